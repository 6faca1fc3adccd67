from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from panel.security import audit, tokens


class Command(BaseCommand):
    help = ("Make a new API token for USERNAME and print its key, once (it is stored only as a hash). "
            "Use it as `Authorization: Token <key>`.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for (default: %(default)s)")
        parser.add_argument("--scope", choices=tokens.Scope.values, default=tokens.Scope.READ_WRITE)
        parser.add_argument("--expires-days", type=int, default=None, help="days until it expires (default: never)")

    def handle(self, *args, username, name, scope, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}; create one with `manage.py createsuperuser`")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        token, key = tokens.issue_token(user, name, scope, expires_days)
        audit.record(None, audit.Action.CREATE, token)
        self.stdout.write(key)
