"""Import the acme.sh home acme.sh itself wrote (/work/shared/fixtures) into a running panel
with `manage.py import_acmesh`, then serve, renew and re-import against a real Pebble."""

import base64
import json
import os
import re
import shutil
import tarfile

import pytest
from cryptography.hazmat.primitives import serialization

from certs.acme.client import AcmeClient
from tests.e2e.conftest import _register
from tests.e2e.test_external_modes import HAND_WRITTEN_CONFIG, port_answers
from tests.e2e.test_issuance import served, wait_for_status
from tests.e2e.test_renewal import certificate, leaf_serial, wait
from tests.support import PanelStack
from tests.support.panel import NGINX_BIN
from tests.support.ports import LOOPBACK, free_port
from tests.support.process import ManagedProcess, wait_until
from tests.test_import_acmesh import CF_TOKEN, FIXTURE

# The renewal must validate for real, not reuse the authorization of an earlier order.
pytestmark = pytest.mark.pebble(env={"PEBBLE_AUTHZREUSE": "0"})

COUNTS = (
    "import json; from certs import models as m;"
    "print(json.dumps({n: getattr(m, n).objects.count() for n in ('AcmeAccount', 'DnsCredential', 'ReloadPreset',"
    " 'InstallTarget', 'Certificate', 'CertificateVersion')}))"
)


def b64conf(text):
    """A value the way acme.sh's _save_conf stores Le_ReloadCmd."""
    return "__ACME_BASE64__START_" + base64.b64encode(text.encode()).decode() + "__ACME_BASE64__END_"


def rewrite(conf, **settings):
    lines = [line for line in conf.read_text().splitlines() if line.split("=", 1)[0] not in settings]
    conf.write_text("\n".join(lines + [f"{key}='{value}'" for key, value in settings.items()]) + "\n")


@pytest.fixture
def webroot_server(tmp_path, pebble):
    """The nginx acme.sh's webroot belonged to, moved along: it serves the webroot on the
    port Pebble validates HTTP-01 at (the panel's own nginx listens elsewhere)."""
    prefix = tmp_path / "other-nginx"
    (prefix / "tmp").mkdir(parents=True)
    webroot = tmp_path / "other-www" / "sample"
    webroot.mkdir(parents=True)
    config = prefix / "nginx.conf"
    config.write_text(HAND_WRITTEN_CONFIG.replace("shop.example.test www.shop.example.test",
                                                  "sample.test www.sample.test").format(
        user="user root;\n" if os.geteuid() == 0 else "", prefix=prefix, webroot=webroot,
        listen=f"{LOOPBACK}:{pebble.http_port}"))
    nginx = ManagedProcess("other-nginx", [NGINX_BIN, "-p", prefix, "-c", config], prefix / "run.log").start()
    wait_until(lambda: port_answers(pebble.http_port), 20, "the webroot's nginx to listen", processes=(nginx,))
    nginx.webroot = webroot
    yield nginx
    nginx.stop()


@pytest.fixture
def stack(request, tmp_path, pebble, redis_server):
    install_root = tmp_path / "install"
    install_root.mkdir()
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, http_port=free_port(), extra_env={
        "CERTPANEL_WEBROOT_ROOTS": str(tmp_path / "other-www"),
        "CERTPANEL_INSTALL_ROOTS": str(install_root),
        "CERTPANEL_ORDER_MAX_RETRIES": "0",
    })
    _register(request, stack)
    stack.start()
    stack.install_root = install_root
    yield stack
    stack.stop()


@pytest.fixture
def acmesh_home(tmp_path, pebble, stack, webroot_server):
    """The fixture home as it would look after moving acme.sh to this machine and this CA."""
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path / "moved", filter="data")
    home = tmp_path / "moved" / "acmesh-home"
    # The CA: the fixture's Pebble is gone; this test's Pebble has another port, which
    # acme.sh's ca/ folder does not record (ca/127.0.0.1/dir still matches), Le_API does.
    for conf in home.glob("*/*.conf"):
        if not conf.name.endswith(".csr.conf"):
            rewrite(conf, Le_API=pebble.directory_url)
    sample = home / "sample.test_ecc" / "sample.test.conf"
    # acme.sh had installed the files there, so the directory exists with them in it.
    install = stack.install_root / "sample"
    install.mkdir()
    folder = home / "sample.test_ecc"
    for source, installed in (("sample.test.key", "sample.key"), ("sample.test.cer", "cert.cer"),
                              ("ca.cer", "ca.cer"), ("fullchain.cer", "fullchain.cer")):
        shutil.copyfile(folder / source, install / installed)
    rewrite(sample,
            # The webroot must be below the stack's WEBROOT_ROOTS, where webroot_server serves it.
            Le_Webroot=str(webroot_server.webroot),
            # acme.sh copied the files to /etc/nginx/ssl/sample: here a directory below INSTALL_ROOTS.
            Le_RealKeyPath=f"{install}/sample.key", Le_RealCertPath=f"{install}/cert.cer",
            Le_RealCACertPath=f"{install}/ca.cer", Le_RealFullChainPath=f"{install}/fullchain.cer",
            # `systemctl reload nginx` is not this machine's to run: a marker shows the preset ran.
            Le_ReloadCmd=b64conf(f"touch {stack.install_root}/reloaded && echo 'reloaded'"))
    return home


def pebble_accounts(pebble):
    """How many accounts Pebble has created: it logs the total after each new account."""
    counts = re.findall(r"There are now (\d+) accounts in memory", pebble.pebble.log_path.read_text())
    return int(counts[-1]) if counts else 0


def counts(stack):
    return json.loads(stack.manage("shell", "-c", COUNTS).stdout.strip().splitlines()[-1])


def import_home(stack, home):
    return stack.manage("import_acmesh", str(home), "--owner", "admin").stdout


def test_an_acme_sh_home_imports_serves_renews_with_its_account_and_imports_once(stack, pebble, acmesh_home):
    # acme.sh had registered this key with the CA; here it does with this test's Pebble.
    account_key = (acmesh_home / "ca/127.0.0.1/dir/account.key").read_text()
    account_url = AcmeClient(pebble.directory_url, account_key, verify=str(pebble.ca_bundle_path)).register(
        "admin@sample.test")
    # ...and kept this CA's URL for it, where the fixture names the URL at its own, gone Pebble.
    rewrite(acmesh_home / "ca/127.0.0.1/dir/ca.conf", ACCOUNT_URL=account_url)
    accounts_before = pebble_accounts(pebble)
    assert accounts_before >= 1
    site_root = stack.www_dir / "sample.test"
    site_root.mkdir(parents=True)
    site = stack.api("POST", "/api/v1/sites/", {"domains": ["sample.test", "www.sample.test"],
                                                "root": str(site_root)})
    assert site.status_code == 201, site.text

    report = import_home(stack, acmesh_home)

    assert CF_TOKEN not in report
    imported = counts(stack)
    assert imported == {"AcmeAccount": 1, "DnsCredential": 1, "ReloadPreset": 1, "InstallTarget": 1,
                        "Certificate": 3, "CertificateVersion": 3}
    state = json.loads(stack.manage("shell", "-c", (
        "import json; from django.db import connection; from certs.models import AcmeAccount, DnsCredential;"
        "a = AcmeAccount.objects.get(); d = DnsCredential.objects.get();"
        "c = connection.cursor(); c.execute('SELECT credentials FROM ' + DnsCredential._meta.db_table);"
        "print(json.dumps({'key': a.account_key, 'url': a.account_url, 'provider': d.provider,"
        " 'values': d.values(), 'raw': c.fetchone()[0]}))")).stdout.strip().splitlines()[-1])
    same_key = serialization.load_pem_private_key(state["key"].encode(), None).public_key().public_numbers()
    assert same_key == serialization.load_pem_private_key(account_key.encode(), None).public_key().public_numbers()
    assert state["url"] == account_url
    assert state["provider"] == "cloudflare" and state["values"]["auth_token"] == CF_TOKEN
    assert CF_TOKEN not in state["raw"]  # encrypted at rest

    certs = {tuple(c["domains"]): c for c in stack.api("GET", "/api/v1/certificates/").json()["results"]}
    sample = certs[("sample.test", "www.sample.test")]
    fixture_serial = leaf_serial(acmesh_home / "sample.test_ecc" / "sample.test.cer")
    assert sample["serial"] == fixture_serial
    served(stack, "sample.test", fixture_serial)

    # Renew through the API: Pebble issues to the imported account, creating none.
    assert stack.api("POST", f"/api/v1/certificates/{sample['id']}/renew/").status_code == 202
    renewed = wait_for_status(stack, sample["id"], "valid", timeout=90)
    assert renewed["order"]["status"] == "valid", renewed
    renewed = wait(lambda: (c := certificate(stack, sample["id"]))["serial"] != fixture_serial and c,
                   what="the renewed version")
    assert pebble_accounts(pebble) == accounts_before
    served(stack, "sample.test", renewed["serial"])
    fullchain = stack.install_root / "sample" / "fullchain.cer"
    wait(lambda: fullchain.exists() and leaf_serial(fullchain) == renewed["serial"], what="the install target")
    wait((stack.install_root / "reloaded").exists, what="the imported reload command")

    again = import_home(stack, acmesh_home)

    assert counts(stack) == {**imported, "CertificateVersion": 4}  # only the renewal added a version
    assert again.count("already imported: certificate") == 3 and "Certificates: 3 already imported" in again
    assert "created" not in again
    assert pebble_accounts(pebble) == accounts_before
