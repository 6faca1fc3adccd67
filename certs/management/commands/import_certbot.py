"""`manage.py import_certbot PATH`: the accounts and certificate lineages of a certbot config
dir, ready to renew here (certs/importers/store.py)."""

from certs import importers
from certs.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = "Import the ACME accounts and certificates of a certbot config dir (e.g. /etc/letsencrypt)."
    client = importers.CERTBOT
