"""`manage.py import_acmesh PATH`: the accounts, certificates, DNS credentials and install
targets of an acme.sh home, ready to renew here (certs/importers/store.py)."""

from certs import importers
from certs.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = "Import the ACME accounts and certificates of an acme.sh home (e.g. ~/.acme.sh)."
    client = importers.ACMESH
