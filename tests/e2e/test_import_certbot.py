"""Importing what the real certbot wrote: certbot 5.8 (requirements-dev.txt) issues two lineages
from Pebble by webroot with a deploy hook; `manage.py import_certbot` moves them into the panel.
The panel's nginx serves certbot's certificate, a renewal goes through Pebble with certbot's own
account (Pebble registers none), lands in certbot's live/ paths and runs the deploy hook; a second
import changes nothing; a broken conf line and a missing key are reported while the rest imports.

The webroot's /.well-known/acme-challenge/ is the panel's challenge directory, which the panel's
nginx serves on Pebble's HTTP-01 port (the site's vhost through its names' folders, linked to
the directory itself here): certbot (webroot) and the panel (http-01-webroot, renewing the import)
both write their tokens there.
"""

import json
import shutil

import josepy
import pytest
from cryptography import x509

from tests.e2e.conftest import _register
from tests.e2e.test_issuance import served
from tests.e2e.test_renewal import wait
from tests.support import PanelStack
from tests.support.certbot import Certbot

# Pebble would reuse the first order's authorizations: then the renewal would validate nothing.
# certbot (not ours) retries a rejected nonce only once, so Pebble's default 5% rejection fails its
# setup run now and then; the panel's own nonce retries are tested at 50% in test_faults_ca.
pytestmark = pytest.mark.pebble(env={"PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "0"})

SHOP = ["shop.example.test", "www.shop.example.test"]
BLOG = ["blog.example.test"]

COUNTS = """
from certs.models import AcmeAccount, Certificate, CertificateVersion, InstallTarget, ReloadPreset
import json
print(json.dumps({m.__name__: m.objects.count() for m in (AcmeAccount, Certificate, CertificateVersion,
                                                           InstallTarget, ReloadPreset)}))
"""
# The thumbprint, not the key, leaves the shell: nothing secret in the test's logs.
ACCOUNTS = """
import json, josepy
from certs.models import AcmeAccount
print(json.dumps([[josepy.JWK.load(a.account_key.encode()).thumbprint().hex(), a.account_url, a.directory_url]
                  for a in AcmeAccount.objects.all()]))
"""


@pytest.fixture
def setup(request, tmp_path, pebble, redis_server):
    webroot = tmp_path / "webroots" / "shared"
    challenges = webroot / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True)
    certbot = Certbot(tmp_path / "certbot", pebble)
    (certbot.config_dir / "live").mkdir(parents=True)
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, extra_env={
        "CERTPANEL_CHALLENGE_DIR": str(challenges),
        "CERTPANEL_WEBROOT_ROOTS": str(tmp_path / "webroots"),
        "CERTPANEL_INSTALL_ROOTS": str(certbot.config_dir / "live"),
        "CERTPANEL_ORDER_MAX_RETRIES": "0",
    })
    _register(request, certbot)
    _register(request, stack)
    stack.start()
    yield stack, certbot, webroot
    stack.stop()


def pebble_accounts_created(pebble):
    """Pebble's WFE logs this line for each new account it stores (wfe.NewAccount), and only then."""
    return pebble.pebble.log_path.read_text().count("accounts in memory")


def serial_of(path):
    return format(x509.load_pem_x509_certificate(path.read_bytes()).serial_number, "x")


def counts(stack):
    return json.loads(stack.manage("shell", "-c", COUNTS).stdout.strip().splitlines()[-1])


def certificate_for(stack, name):
    listed = stack.api("GET", "/api/v1/certificates/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    return next(c for c in rows if name in c["domains"])


def damaged_copies(config_dir):
    """Two more lineages made from certbot's own blog files: one conf with a broken line, one key gone."""
    for name in ("broken", "keyless"):
        shutil.copytree(config_dir / "archive" / "blog", config_dir / "archive" / name)
        shutil.copytree(config_dir / "live" / "blog", config_dir / "live" / name, symlinks=True)
        for link in (config_dir / "live" / name).glob("*.pem"):
            target = str(link.readlink()).replace("/blog/", f"/{name}/")
            link.unlink()
            link.symlink_to(target)
        conf = (config_dir / "renewal" / "blog.conf").read_text().replace("/blog/", f"/{name}/")
        (config_dir / "renewal" / f"{name}.conf").write_text(conf)
    broken = config_dir / "renewal" / "broken.conf"
    lines = broken.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith("authenticator")) + 1
    lines[number - 1] = "authenticator webroot"
    broken.write_text("\n".join(lines) + "\n")
    (config_dir / "archive" / "keyless" / "privkey1.pem").unlink()
    return broken, number, config_dir / "live" / "keyless" / "privkey.pem"


def test_certbots_lineages_import_serve_and_renew_with_certbots_account(setup, pebble):
    stack, certbot, webroot = setup
    marker = certbot.tmp_dir / "deployed.pem"
    certbot.register()
    shop_live = certbot.certonly_webroot("shop", SHOP, webroot,
                                         "--deploy-hook", f'cp "$RENEWED_LINEAGE/cert.pem" {marker}')
    certbot.certonly_webroot("blog", BLOG, webroot, "--key-type", "rsa", "--rsa-key-size", "2048")
    certbot_serial = serial_of(shop_live / "cert.pem")
    assert serial_of(marker) == certbot_serial  # certbot ran its deploy hook
    broken, broken_line, keyless_key = damaged_copies(certbot.config_dir)

    site_root = stack.www_dir / "shop"
    site_root.mkdir()
    site = stack.api("POST", "/api/v1/sites/", {"domains": SHOP, "root": str(site_root)})
    assert site.status_code == 201, site.text
    # The site's vhost answers HTTP-01 from the folder of the name asked for; the webroot renewal
    # below writes into the challenge directory itself (the webroot), so the names' folders lead there.
    (webroot / ".well-known" / "acme-challenge" / "names").mkdir()
    for name in SHOP:
        (webroot / ".well-known" / "acme-challenge" / "names" / name).symlink_to("..")
    accounts_before = pebble_accounts_created(pebble)

    dry = stack.manage("import_certbot", str(certbot.config_dir), "--owner", stack.username, "--dry-run",
                       check=False).stdout
    assert "would create: certificate shop" in dry and "would create: certificate blog" in dry, dry
    assert counts(stack)["Certificate"] == 0  # a dry run stores nothing

    report = stack.manage("import_certbot", str(certbot.config_dir), "--owner", stack.username, check=False)
    output = report.stdout + report.stderr
    assert f"{broken}:{broken_line}" in output, output
    assert str(keyless_key) in output, output
    assert counts(stack)["Certificate"] == 2, output  # shop and blog; nothing of the damaged two

    # The panel's nginx serves certbot's certificate for the site's names.
    served(stack, "shop.example.test", certbot_serial)
    shop = certificate_for(stack, "shop.example.test")
    assert shop["serial"] == certbot_serial and shop["challenge"] == "http-01-webroot"
    assert certificate_for(stack, "blog.example.test")["key_type"] == "rsa2048"

    # The account is certbot's: the same key (JWK thumbprint) and the same URL at the CA.
    account_dir = next((certbot.config_dir / "accounts").rglob("private_key.json")).parent
    certbot_jwk = josepy.JWK.json_loads((account_dir / "private_key.json").read_text())
    certbot_url = json.loads((account_dir / "regr.json").read_text())["uri"]
    (stored,) = json.loads(stack.manage("shell", "-c", ACCOUNTS).stdout.strip().splitlines()[-1])
    thumbprint, account_url, directory_url = stored
    assert thumbprint == certbot_jwk.thumbprint().hex()
    assert (account_url, directory_url) == (certbot_url, pebble.directory_url)

    # Renew through the API: Pebble sees no new account; the new version is served, lands in
    # certbot's live/ paths, and the deploy hook runs as the reload preset.
    marker.unlink()
    renew = stack.api("POST", f"/api/v1/certificates/{shop['id']}/renew/")
    assert renew.status_code == 202, renew.text
    renewed = wait(lambda: (c := certificate_for(stack, "shop.example.test"))["serial"] != certbot_serial
                   and c["order"]["status"] == "valid" and c, timeout=60, what="the renewal")
    assert pebble_accounts_created(pebble) == accounts_before
    served(stack, "shop.example.test", renewed["serial"])
    wait(lambda: serial_of(shop_live / "fullchain.pem") == renewed["serial"], what="live/ updated")
    assert serial_of(shop_live / "cert.pem") == renewed["serial"]
    wait(marker.exists, what="the deploy hook running as the reload preset")
    assert serial_of(marker) == renewed["serial"]

    # Importing the same dir again creates nothing.
    before = counts(stack)
    again = stack.manage("import_certbot", str(certbot.config_dir), "--owner", stack.username, check=False).stdout
    assert "already imported: certificate shop" in again and "created:" not in again, again
    assert counts(stack) == before
    assert certificate_for(stack, "shop.example.test")["serial"] == renewed["serial"]
