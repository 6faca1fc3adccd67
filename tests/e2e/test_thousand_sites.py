"""1,000 HTTPS sites on one nginx (issue 18): a renewal is served with no reload; a site whose
config nginx rejects, a certificate file gone from disk, each stays that site's own problem
while the other thousand are served."""

import json
import ssl
import time

import pytest

from tests.e2e.test_issuance import issue, served, wait_for_status
from tests.support.tls import tls_peer_certificate

SITES = 1000
SAMPLE = ("site-0.many.test", "site-500.many.test", "site-999.many.test")  # the others, by sample


def reloads(stack):
    """The reloads nginx has run (its private error log notes each at the notice level)."""
    return stack.nginx_error_log.read_text().count("reconfiguring")


def others_served(stack, filled):
    for name in SAMPLE:
        assert format(tls_peer_certificate("127.0.0.1", stack.https_port, name).serial_number, "x") == filled[name][0]


def site(stack, site_id):
    return stack.api("GET", f"/api/v1/sites/{site_id}/").json()


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return result


@pytest.mark.e2e
def test_a_thousand_sites_renew_without_reloads_and_keep_each_failure_to_its_site(panel_stack):
    stack = panel_stack
    filled = stack.manage("shell", "-c", "from tests.support.many_sites import fill; "
                                         f"fill({SITES}, {str(stack.www_dir)!r})", timeout=300)
    filled = json.loads(filled.stdout.strip().splitlines()[-1])
    assert len(filled) == SITES
    for name in SAMPLE:
        served(stack, name, filled[name][0])

    # A renewal, through the CA and the deploy worker, is served without nginx reloading.
    cert = issue(stack, ["renew.example.test"], "ec256")
    first = wait_for_status(stack, cert["id"], "valid")
    served(stack, "renew.example.test", first["serial"])
    before = reloads(stack)
    assert stack.api("POST", f"/api/v1/certificates/{cert['id']}/renew/").status_code == 202
    second = wait_for(lambda: (body := stack.api("GET", f"/api/v1/certificates/{cert['id']}/").json())["serial"]
                      != first["serial"] and body["order"]["status"] == "valid" and body)
    served(stack, "renew.example.test", second["serial"])
    assert reloads(stack) == before, "a renewal reloaded nginx"

    # A site whose config nginx rejects: that site says so; the thousand are still served.
    root = stack.www_dir / "rejected.example.test"
    root.mkdir()
    new = stack.api("POST", "/api/v1/sites/", {"domains": ["rejected.example.test"], "root": str(root)}).json()
    custom = stack.data_dir / "nginx" / "sites" / "custom" / f"site-{new['id']}"
    custom.mkdir(parents=True, exist_ok=True)
    (custom / "bad.conf").write_text("no_such_directive on;\n")
    assert stack.api("PATCH", f"/api/v1/sites/{new['id']}/", {"hsts": True}).status_code == 200
    rejected = wait_for(lambda: (row := site(stack, new["id"]))["config_status"] == "failed" and row)
    assert "no_such_directive" in rejected["config_error"]
    assert f"custom/site-{new['id']}/bad.conf" in rejected["config_error"]  # the file the owner edits
    others_served(stack, filled)

    # A certificate file removed from disk: that site's handshakes fail, the others' do not, and
    # the panel says which site and what to do.
    seventh = filled["site-7.many.test"][1]
    gone = stack.data_dir / "certs" / "served" / f"site-{seventh}.pem"
    gone.unlink()
    with pytest.raises((ssl.SSLError, OSError)):
        tls_peer_certificate("127.0.0.1", stack.https_port, "site-7.many.test")
    others_served(stack, filled)
    assert f'cannot load certificate "{gone}"' in stack.nginx_error_log.read_text()
    stack.manage("shell", "-c", "from panel.deployment.tasks import check_served_certificates; "
                                "check_served_certificates()")
    broken = site(stack, seventh)
    assert broken["config_status"] == "failed" and str(gone) in broken["config_error"]
    assert site(stack, filled["site-8.many.test"][1])["config_status"] == "applied"

