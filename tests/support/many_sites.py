"""Many HTTPS sites at once, for end-to-end tests at scale: run inside the panel's own Django
(`manage.py shell -c "from tests.support.many_sites import fill; fill(...)"`).

The sites and their certificates go straight into the database and their files straight to
disk, as the panel would have written them (render.render_site, render_names, the served
certificate file), then nginx reloads once: applying 1,000 sites one by one would take the
test's time without testing anything more. Prints {name: [serial, site id]} as JSON."""

import datetime
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.utils import timezone

from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from panel.deployment.nginx import apply
from panel.deployment.nginx.render import render_names, render_site
from panel.models import Site
from panel.toolkit import pem
from panel.toolkit.files import write_atomic


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def fill(count, www_dir, domain="many.test"):
    owner, _ = get_user_model().objects.get_or_create(username="many")
    account = AcmeAccount.objects.create(owner=owner, directory_url="https://ca.many.test/directory",
                                         account_key="unused", account_url="https://ca.many.test/acct/1")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    root = Path(www_dir) / domain
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(f"one of the {count} sites\n")
    names = [f"site-{i}.{domain}" for i in range(count)]
    sites = Site.objects.bulk_create([Site(owner=owner, domains=[name], root=str(root)) for name in names])
    certificates = Certificate.objects.bulk_create([
        Certificate(owner=owner, account=account, domains=[site.domains[0]], site=site) for site in sites])
    orders = Order.objects.bulk_create([
        Order(owner=owner, certificate=c, status=Order.Status.VALID, finished_at=timezone.now()) for c in certificates])
    versions, serials = [], {}
    for certificate, order in zip(certificates, orders):
        leaf = (x509.CertificateBuilder().subject_name(_name(certificate.domains[0])).issuer_name(_name("Many CA"))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=60))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(certificate.domains[0])]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
        serials[certificate.domains[0]] = format(leaf.serial_number, "x")
        versions.append(CertificateVersion(certificate=certificate, order=order, cert_pem=leaf_pem, chain_pem=leaf_pem,
                                           private_key=key_pem, serial=serials[certificate.domains[0]],
                                           issuer="CN=Many CA", not_before=leaf.not_valid_before_utc,
                                           not_after=leaf.not_valid_after_utc))
    versions = CertificateVersion.objects.bulk_create(versions)
    for certificate, version in zip(certificates, versions):
        certificate.current_version, certificate.status = version, Certificate.Status.VALID
    Certificate.objects.bulk_update(certificates, ["current_version", "status"])

    current = apply.layout()
    apply.ensure_shared_files(current)
    for site, version in zip(sites, versions):
        write_atomic(current.served_certificate(site), pem.bundle(key_pem, version.chain_pem), mode=0o600)
        write_atomic(current.https_ready(site), "", mode=0o600)
        write_atomic(current.names_file(site), render_names(site, current))
        write_atomic(current.vhost_dir / site.config_name, render_site(site, current))
    Site.objects.filter(pk__in=[s.pk for s in sites]).update(config_status="applied", config_applied_at=timezone.now())
    apply.reload_now()
    print(json.dumps({site.domains[0]: [serials[site.domains[0]], site.pk] for site in sites}))
