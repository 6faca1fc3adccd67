"""`manage.py renew`: what is due and why, like `acme.sh --cron`; starts the renewals."""

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from certs import orders
from certs.models import Certificate
from certs.renewal import policy as renewal_policy
from panel.toolkit import clock


class Command(BaseCommand):
    help = "Renew the certificates that are due (or --force them), saying why each one is."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what is due, change nothing")
        parser.add_argument("--force", action="store_true", help="renew even if not due yet")
        parser.add_argument("--cert", type=int, metavar="ID", help="only this certificate")

    def handle(self, *args, dry_run, force, cert, **options):
        now = clock.now()
        if force:
            candidates = Certificate.objects.renewable().filter(current_version__isnull=False)
        else:
            candidates = renewal_policy.due(now)
        if cert is not None:
            if not Certificate.objects.filter(pk=cert).exists():
                raise CommandError(f"no certificate with id {cert}")
            candidates = candidates.filter(pk=cert)
        candidates = candidates.select_related("current_version")
        due_ids = set(renewal_policy.due(now).values_list("pk", flat=True)) if force else None
        count = 0
        for certificate in candidates.iterator():
            count += 1
            why = "forced" if force and certificate.pk not in due_ids else renewal_policy.reason(certificate, now)
            names = ", ".join(certificate.domains)
            if dry_run:
                self.stdout.write(f"would renew #{certificate.pk} {names}: {why}")
                continue
            try:
                orders.start_order(certificate, is_renewal=True)
            except IntegrityError:
                self.stdout.write(f"skipped #{certificate.pk} {names}: an order is already running")
                continue
            self.stdout.write(f"renewing #{certificate.pk} {names}: {why}")
        if count == 0:
            upcoming = Certificate.objects.filter(next_renewal_at__isnull=False).order_by("next_renewal_at").first()
            when = f"; next: #{upcoming.pk} at {upcoming.next_renewal_at:%Y-%m-%d %H:%M} UTC" if upcoming else ""
            self.stdout.write(f"nothing is due{when}")
