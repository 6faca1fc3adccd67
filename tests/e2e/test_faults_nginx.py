"""Faults on the nginx side: one site's config broken by a hand edit, and the certificate
directory unwritable during a renewal. Other sites keep getting certificates, the broken
one keeps its previous config and certificate, and the owner sees nginx's (or the
filesystem's) own words."""

import subprocess

from tests.e2e.test_faults_ca import add_account, add_site, certificate, finished, request_certificate, wait
from tests.e2e.test_issuance import served
from tests.e2e.test_worker_crash import count_rows


def site(stack, site_id):
    return stack.api("GET", f"/api/v1/sites/{site_id}/").json()


def issued(stack, name, account_id, site_id=None):
    cert_id = request_certificate(stack, name, account_id, site_id)
    body = wait(lambda: finished(stack, cert_id), what=f"{name} finishing")
    assert body["order"]["status"] == "valid", body["order"]["log"]
    served(stack, name, body["serial"])
    return body


def test_a_site_broken_by_a_hand_edit_does_not_stop_the_others(panel_stack):
    stack = panel_stack
    account_id = add_account(stack)
    broken_id = add_site(stack, "broken.example.test")
    first = issued(stack, "broken.example.test", account_id, broken_id)
    vhost = stack.data_dir / "nginx" / "sites" / f"site-{broken_id}.conf"
    previous_config = vhost.read_text()

    # The owner's own additions (they survive regeneration) with a directive nginx rejects.
    bad = stack.data_dir / "nginx" / "sites" / "custom" / f"site-{broken_id}" / "typo.conf"
    bad.write_text("proxy_buferring off;\n")
    changed = stack.api("PATCH", f"/api/v1/sites/{broken_id}/", {"hsts": True})
    assert changed.status_code == 200, changed.text
    rejected = wait(lambda: (s := site(stack, broken_id))["config_status"] == "failed" and s, timeout=60,
                    what="nginx rejecting the broken site")
    assert 'unknown directive "proxy_buferring"' in rejected["config_error"], rejected
    assert str(bad) in rejected["config_error"], rejected  # the file the owner must fix
    assert vhost.read_text() == previous_config  # its previous config stays

    # Every other site still gets its certificate issued and served.
    others = [issued(stack, name, account_id) for name in ("fine1.example.test", "fine2.example.test")]
    assert all(body["last_error"] == "" for body in others)
    assert site(stack, broken_id)["config_status"] == "failed"
    served(stack, "broken.example.test", first["serial"])  # still on HTTPS with its certificate
    assert "hello from broken.example.test" in stack.http_get("broken.example.test").text

    bad.unlink()  # fixed: the next apply of the site succeeds
    assert stack.api("PATCH", f"/api/v1/sites/{broken_id}/", {"hsts": True}).status_code == 200
    wait(lambda: site(stack, broken_id)["config_status"] == "applied", timeout=60, what="the fixed site applied")
    assert "Strict-Transport-Security" in vhost.read_text()


def chattr(flag, path):
    subprocess.run(["chattr", flag, str(path)], check=True)


def test_an_unwritable_certificate_directory_keeps_the_old_certificate_served(panel_stack):
    """The tests run as root, whom chmod does not stop: `chattr +i` makes the directory the
    panel writes the site's certificate file into immutable, for root too (ext4 supports it)."""
    stack = panel_stack
    first = issued(stack, "immutable.example.test", add_account(stack))
    cert_dir = stack.data_dir / "certs" / "served"  # where the site's certificate file is renamed in
    files_before = sorted(p.relative_to(cert_dir) for p in cert_dir.rglob("*"))

    chattr("+i", cert_dir)
    try:
        renew = stack.api("POST", f"/api/v1/certificates/{first['id']}/renew/")
        assert renew.status_code == 202, renew.text
        stuck = wait(lambda: (c := certificate(stack, first["id"]))["last_error"] and c, timeout=90,
                     what="the renewal's deploy failing")
        assert stuck["serial"] != first["serial"] and stuck["order"]["status"] == "valid", stuck
        assert "Operation not permitted" in stuck["last_error"], stuck
        assert any("nginx cannot serve this certificate yet" in line for line in stuck["order"]["log"]), stuck
        broken_site = site(stack, stuck["site"])
        assert broken_site["config_status"] == "failed" and "Operation not permitted" in broken_site["config_error"]
        served(stack, "immutable.example.test", first["serial"])  # the previous certificate stays served
        assert sorted(p.relative_to(cert_dir) for p in cert_dir.rglob("*")) == files_before  # nothing half-written
    finally:
        chattr("-i", cert_dir)

    healed = wait(lambda: (c := certificate(stack, first["id"]))["last_error"] == "" and c, timeout=120,
                  what="the retried deploy succeeding")
    served(stack, "immutable.example.test", healed["serial"])
    assert healed["serial"] == stuck["serial"]
    assert healed["order"]["log"][-1].endswith("Certificate installed in nginx"), healed["order"]["log"]
    assert count_rows(stack, first["id"]) == (2, 2)  # the first and exactly one renewal, one order each
    assert site(stack, stuck["site"])["config_status"] == "applied"
