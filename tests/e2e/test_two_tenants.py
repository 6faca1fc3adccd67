"""Two customers of one hoster on a real stack (Pebble, nginx, Redis, a Celery worker), neither an
administrator. Each adds a site by its domain alone and gets a served certificate; the second
cannot take the first's domain, document root, install path or reload preset; when the first gives
a name up and the second adds it, the first's renewal fails saying which name, and the second's
certificate for it is served."""

import json

import pytest
import requests

from tests.e2e.conftest import _register
from tests.e2e.test_issuance import served, wait_for_status
from tests.e2e.test_renewal import wait
from tests.support import PanelStack

pytestmark = pytest.mark.pebble(env={"PEBBLE_AUTHZREUSE": "0"})

ALICE = ["alice.test", "moving.test"]  # two registrable domains: she gives the second one up
BOB = ["bob.test"]


class Customer:
    """A user of the panel with an API token of their own."""

    def __init__(self, stack, username):
        self.stack, self.username = stack, username
        stack.manage("shell", "-c", (
            "from panel.security import users;"
            f"users.create_user({username!r}, 'pw-{username}-0123', users.Role.USER)"))
        key = stack.manage("create_api_token", username).stdout.strip().splitlines()[-1]
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "Authorization": f"Token {key}"})

    def api(self, method, path, body=None):
        return self.session.request(method, f"{self.stack.web_url}{path}", json=body, timeout=30)

    def add_site(self, domains):
        return self.api("POST", "/api/v1/sites/", {"domains": domains})

    def certificate_for(self, site_id, domains):
        account = self.api("GET", "/api/v1/acme-accounts/").json()["results"]
        if not account:
            made = self.api("POST", "/api/v1/acme-accounts/", {"ca": "pebble", "email": f"{self.username}@example.com"})
            assert made.status_code == 201, made.text
            account = [made.json()]
        cert = self.api("POST", "/api/v1/certificates/", {"domains": domains, "acme_account": account[0]["id"],
                                                          "key_type": "ec256", "site": site_id})
        assert cert.status_code == 201, cert.text
        body = wait_for_status(self, cert.json()["id"], "valid", timeout=90)
        assert body["order"]["status"] == "valid", body
        return body


def shell(stack, code):
    """Run `code` in the panel's shell; it sets `result`, returned decoded from JSON."""
    out = stack.manage("shell", "-c", f"import json\n{code}\nprint('RESULT ' + json.dumps(result))").stdout
    return json.loads(out.rsplit("RESULT ", 1)[1])


@pytest.fixture
def stack(request, tmp_path, pebble, redis_server):
    # Users register only with the CAs the administrator lists: here, the test's Pebble. A
    # certificate minutes old may be renewed (the panel's guard against renewal storms waits an hour).
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, extra_env={
        "CERTPANEL_EXTRA_CAS": f"pebble={pebble.directory_url}", "CERTPANEL_RENEWAL_MIN_AGE_SECONDS": "0"})
    _register(request, stack)
    stack.start()
    yield stack
    stack.stop()


def test_two_customers_share_a_server_and_cannot_touch_each_other(stack):
    alice, bob = Customer(stack, "alice"), Customer(stack, "bob")

    # Each adds a site by its domain alone: the panel makes the document root in their home.
    alices_site = alice.add_site(ALICE)
    assert alices_site.status_code == 201, alices_site.text
    alices_root = alices_site.json()["root"]
    assert alices_root.endswith("/home/alice/alice.test")
    bobs_site = bob.add_site(BOB)
    assert bobs_site.status_code == 201, bobs_site.text
    assert bobs_site.json()["root"].endswith("/home/bob/bob.test")
    # The start page the panel made, once the worker has applied the site's nginx config.
    wait(lambda: "alice.test" in stack.http_get("alice.test").text, what="alice's start page served")

    alices_cert = alice.certificate_for(alices_site.json()["id"], ALICE)
    bobs_cert = bob.certificate_for(bobs_site.json()["id"], BOB)
    for name in ALICE:
        served(stack, name, alices_cert["serial"])
    served(stack, "bob.test", bobs_cert["serial"])

    # Bob cannot take Alice's domain (the name itself, or another name under her registrable domain) ...
    for names in (["alice.test"], ["www.alice.test"]):
        taken = bob.add_site(names)
        assert taken.status_code == 400 and "domains" in taken.json(), taken.text
    # ... nor her document root ...
    root = bob.api("POST", "/api/v1/sites/", {"domains": ["shop.bob.test"], "root": alices_root})
    assert root.status_code == 400 and "root" in root.json(), root.text
    # ... nor write his certificate's files into her home ...
    alices_home = alices_root.rsplit("/", 1)[0]
    path = bob.api("POST", "/api/v1/install-targets/", {"certificate": bobs_cert["id"],
                                                         "fullchain_path": f"{alices_home}/fullchain.pem"})
    assert path.status_code == 400 and "fullchain_path" in path.json(), path.text
    # ... nor see or run her reload preset (one her imported setup brought, approved by the administrator).
    preset_id = shell(stack, (
        "from django.contrib.auth import get_user_model\n"
        "from certs.models import ReloadPreset\n"
        "alice = get_user_model().objects.get(username='alice')\n"
        "result = ReloadPreset.objects.create(name='alice-app', command=['/bin/true'], owner=alice).pk"))
    assert [p["id"] for p in alice.api("GET", "/api/v1/reload-presets/").json()["results"]] == [preset_id]
    assert bob.api("GET", "/api/v1/reload-presets/").json()["results"] == []
    bobs_home = bobs_site.json()["root"].rsplit("/", 1)[0]
    preset = bob.api("POST", "/api/v1/install-targets/", {"certificate": bobs_cert["id"], "reload_preset": preset_id,
                                                           "fullchain_path": f"{bobs_home}/fullchain.pem"})
    assert preset.status_code == 400 and list(preset.json()) == ["reload_preset"], preset.text
    # Nothing of Alice's changed, and she still is served her certificate.
    assert stack.http_get("alice.test").status_code in (200, 301, 308)
    served(stack, "alice.test", alices_cert["serial"])

    # Alice gives moving.test up; Bob adds it to a site of his and gets a certificate for it.
    kept = alice.api("PATCH", f"/api/v1/sites/{alices_site.json()['id']}/", {"domains": ["alice.test"]})
    assert kept.status_code == 200, kept.text
    moved = bob.add_site(["moving.test"])
    assert moved.status_code == 201, moved.text

    # Alice's renewal, due now, fails at its first step naming the name, and stops renewing.
    asked = alice.api("POST", f"/api/v1/certificates/{alices_cert['id']}/renew/")
    assert asked.status_code == 400 and "moving.test" in asked.json()["detail"]
    assert shell(stack, (
        "import datetime\n"
        "from django.utils import timezone\n"
        "from certs.models import Certificate\n"
        "from certs.renewal import sweep\n"
        f"Certificate.objects.filter(pk={alices_cert['id']}).update("
        "next_renewal_at=timezone.now() - datetime.timedelta(minutes=1))\n"
        "result = sweep.sweep()")) == [alices_cert["id"]]
    failed = wait_for_status(alice, alices_cert["id"], "invalid", timeout=60)
    assert failed["order"]["status"] == "invalid", failed
    assert "No longer on the owner's sites: moving.test" in failed["order"]["error"]
    assert failed["next_renewal_at"] is None

    movings = bob.certificate_for(moved.json()["id"], ["moving.test"])
    served(stack, "moving.test", movings["serial"])
    served(stack, "alice.test", alices_cert["serial"])  # her remaining name keeps its certificate
