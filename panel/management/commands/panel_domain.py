from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from certs.acme import AcmeError
from panel.hosting import panel_domain


class Command(BaseCommand):
    help = ("Give the panel its domain: its certificate is ordered (HTTP-01 through the managed nginx, at the "
            "default CA, owned by the first superuser) and served on the panel's HTTPS port once issued. "
            "Without arguments: show the domain, or set CERTPANEL_PANEL_DOMAIN if none was ever set.")

    def add_arguments(self, parser):
        parser.add_argument("domain", nargs="?")
        parser.add_argument("--clear", action="store_true", help="serve the panel with its self-signed certificate "
                                                                 "again; the domain's certificate stops renewing")

    def handle(self, *args, domain=None, clear=False, **options):
        if clear and domain:
            raise CommandError("give a domain or --clear, not both")
        if clear:
            panel_domain.clear_domain()
            self.stdout.write("The panel has no domain: nginx serves it with its self-signed certificate.")
            return
        try:
            if domain is None:
                row = panel_domain.set_initial_domain()
                if row is None:
                    self._show()
                    return
            else:
                admin = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
                if admin is None:
                    raise CommandError("no active superuser to own the panel's certificate")
                row = panel_domain.set_domain(domain, admin)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except AcmeError as exc:
            raise CommandError(f"the CA refused to register an account: {exc}") from None
        self.stdout.write(f"The panel's domain is {row.domain}; certificate #{row.certificate_id} is being ordered "
                          f"and is served on port {settings.PANEL_PORT} once issued.")

    def _show(self):
        row = panel_domain.current()
        version = row.serving_version()
        served = f"certificate #{row.certificate_id}, serial {version.serial}" if version else "a self-signed certificate"
        self.stdout.write(f"domain: {row.domain or '-'}; port: {settings.PANEL_PORT or 'off'}; served with {served}")
