"""The panel's own HTTPS, as on a server: nginx serves the panel on its own port with a self-signed
certificate; an administrator gives it a domain on its page (over that port: secure cookies,
CSRF with the port's Origin); Pebble issues the panel's certificate through the panel's own
pipeline and a new TLS handshake presents it, then its renewal, with nothing restarted."""

import re
import time

import pytest
import requests
import urllib3

from tests.e2e.conftest import _register
from tests.support import PanelStack
from tests.support.tls import certificate_names, tls_peer_certificate, wait_for_served_certificate

pytestmark = pytest.mark.e2e

DOMAIN = "panel.example.test"  # Pebble's DNS (challtestsrv) sends every name to 127.0.0.1

_SET_PEBBLE_AS_DEFAULT = """
from panel.models import PanelSettings
row = PanelSettings.load()
row.default_ca = "pebble"
row.save()
"""

_HEARTBEATS = """
from panel.deployment.tasks import worker_heartbeat
for queue in ("acme", "deploy"):
    worker_heartbeat.apply_async((queue,), queue=queue)
"""


@pytest.fixture
def stack(request, tmp_path, pebble, redis_server):
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, panel_port=0,
                       extra_env={"CERTPANEL_EXTRA_CAS": f"pebble={pebble.directory_url}"})
    _register(request, stack)
    stack.start()
    yield stack
    stack.stop()


def csrf_token(page):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def test_the_panel_is_served_on_its_port_and_gets_its_own_certificate_without_a_restart(stack):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    port = stack.panel_port
    assert "self-signed" in tls_peer_certificate("127.0.0.1", port, None).subject.rfc4514_string()

    # /healthz over the panel's port, once a worker of each queue has taken a heartbeat.
    stack.manage("shell", "-c", _HEARTBEATS)
    deadline = time.monotonic() + 30
    while (health := requests.get(f"{stack.panel_url}/healthz", verify=False, timeout=5)).status_code != 200:
        assert time.monotonic() < deadline, health.text
        time.sleep(0.3)
    assert health.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "worker": "ok",
                                                        "nginx": "ok"}}

    # The administrator logs in over HTTPS (Secure cookies; Django's CSRF check takes the
    # Origin https://127.0.0.1:<port>, with no CERTPANEL_CSRF_TRUSTED_ORIGINS) and sets the domain.
    stack.manage("shell", "-c", _SET_PEBBLE_AS_DEFAULT)
    browser = requests.Session()
    browser.trust_env = False  # the self-signed certificate: no CA bundle from the environment either
    browser.verify = False
    browser.headers["Origin"] = stack.panel_url
    login = browser.get(f"{stack.panel_url}/login/", timeout=10)
    assert login.headers["Strict-Transport-Security"].startswith("max-age=")
    signed_in = browser.post(f"{stack.panel_url}/login/", timeout=10, allow_redirects=False,
                             data={"username": stack.username, "password": stack.password,
                                   "csrfmiddlewaretoken": csrf_token(login)})
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert "secure" in signed_in.headers["Set-Cookie"].lower()
    page = browser.get(f"{stack.panel_url}/settings/panel-https/", timeout=10)
    assert page.status_code == 200 and "self-signed" in page.text
    nginx_pid, web_pid = stack.nginx.pid, stack.web.pid
    saved = browser.post(f"{stack.panel_url}/settings/panel-https/", timeout=60, allow_redirects=False,
                         data={"domain": DOMAIN, "csrfmiddlewaretoken": csrf_token(page)})
    assert saved.status_code == 302, saved.text[:2000]

    # Pebble issues it (HTTP-01 through the managed nginx); a new handshake on the panel's port shows it.
    issued = wait_for_served_certificate(port, DOMAIN, lambda c: "Pebble" in c.issuer.rfc4514_string(), timeout=90)
    assert certificate_names(issued) == [DOMAIN]
    page = browser.get(f"{stack.panel_url}/settings/panel-https/", timeout=10)
    assert format(issued.serial_number, "x") in page.text

    # It renews like any other certificate, and the renewal is served the same way.
    certificate_id = stack.api("GET", "/api/v1/certificates/").json()["results"][0]["id"]
    stack.manage("renew", "--force", "--cert", str(certificate_id))
    renewed = wait_for_served_certificate(port, DOMAIN, lambda c: c.serial_number != issued.serial_number
                                          and "Pebble" in c.issuer.rfc4514_string(), timeout=90)
    assert certificate_names(renewed) == [DOMAIN]
    assert (stack.nginx.pid, stack.web.pid) == (nginx_pid, web_pid)  # nothing was restarted
    assert stack.nginx.alive and stack.web.alive
    assert requests.get(f"{stack.panel_url}/healthz", verify=False, timeout=5).status_code == 200
