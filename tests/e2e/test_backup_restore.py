"""Backup -> the installation lost (processes stopped, data directory and database wiped) ->
restore -> the panel serves and renews as before: real nginx, Pebble, BIND (RFC 2136), Redis,
gunicorn and a Celery worker."""

import shutil

import pytest

from tests.e2e.test_dns01 import credential, dns_stack, request_certificate, wait_order  # noqa: F401 - a fixture
from tests.e2e.test_issuance import served
from tests.support import stop_all, wait_until

pytestmark = pytest.mark.e2e

PASSPHRASE = "a passphrase for the e2e backup"


def start_again(stack):
    """The stack's nginx, web server and worker on the restored installation (no migrate, no new user)."""
    stack._start_nginx()
    stack.web = stack._process("gunicorn", [
        stack.python, "-m", "gunicorn", "panel.wsgi:application", "-b", f"127.0.0.1:{stack.web_port}", "-w", "1",
        "--access-logfile", "-", "--error-logfile", "-", "--graceful-timeout", "5"], "web").start()
    stack.start_worker()
    wait_until(stack._web_answers, stack.start_timeout, "gunicorn to answer HTTP", processes=(stack.web,))


@pytest.mark.dns_stack(zones=("example.test",))
def test_a_wiped_installation_comes_back_from_its_backup(dns_stack, tmp_path):
    stack, bind = dns_stack
    name = "shop.example.test"
    root = stack.www_dir / name
    root.mkdir(parents=True)
    site = stack.api("POST", "/api/v1/sites/", {"domains": [name], "root": str(root)})
    assert site.status_code == 201, site.text
    site_id = site.json()["id"]
    dns = credential(stack, bind, "example.test")
    cert_id = request_certificate(stack, domains=[name], site=site_id, challenge="dns-01", dns_credential=dns)
    issued = wait_order(stack, cert_id, ("valid", "invalid"))
    assert issued["order"]["status"] == "valid", issued
    served(stack, name, issued["serial"])
    custom = stack.data_dir / "nginx" / "sites" / "custom" / f"site-{site_id}"
    custom.mkdir(parents=True, exist_ok=True)
    (custom / "restored.conf").write_text('add_header X-Restored "yes" always;\n')

    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    archive = tmp_path / "backups" / "panel.tar.gz"
    archive.parent.mkdir()
    made = stack.manage("backup", "--passphrase-file", str(passphrase), str(archive))
    assert "Backup written to" in made.stdout and archive.stat().st_mode & 0o077 == 0

    # The machine is lost: every panel process stopped, its data directory and database gone.
    stop_all([*stack.workers, stack.web, stack.nginx])
    shutil.rmtree(stack.data_dir)
    for leftover in stack.tmp_dir.glob("panel.sqlite3*"):
        leftover.unlink()
    stack.data_dir.mkdir()

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase of this backup\n")
    refused = stack.manage("restore", str(archive), "--passphrase-file", str(wrong), check=False)
    assert refused.returncode != 0 and "passphrase does not open this archive" in refused.stderr
    assert not (stack.data_dir / "encryption.keys").exists() and not any((stack.data_dir / "certs").iterdir())

    restored = stack.manage("restore", str(archive), "--passphrase-file", str(passphrase))
    assert "nginx apply queued for 1 site(s)" in restored.stdout, restored.stdout
    start_again(stack)

    # The same certificate is served again, with the site's own nginx addition.
    served(stack, name, issued["serial"])
    assert stack.http_get(name).headers.get("X-Restored") == "yes"
    # The DNS credential decrypted: its test reaches BIND with the TSIG key.
    tested = stack.api("POST", f"/api/v1/dns-credentials/{dns}/test/")
    assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
    # And the next renewal (DNS-01 through that credential) is issued and served.
    renewed = stack.api("POST", f"/api/v1/certificates/{cert_id}/renew/")
    assert renewed.status_code == 202, renewed.text

    def new_serial():
        body = stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()
        assert body["order"]["status"] != "invalid", body
        return body if body["serial"] != issued["serial"] and body["order"]["status"] == "valid" else None

    second = wait_until(new_serial, 90, "the renewal after the restore")
    served(stack, name, second["serial"])
