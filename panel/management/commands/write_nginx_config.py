import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from panel.deployment.nginx import apply


class Command(BaseCommand):
    help = "Write the private nginx's main config and the shared snippets, then print the nginx command line."

    def handle(self, *args, **options):
        if not settings.NGINX_PRIVATE:
            apply.ensure_shared_files(apply.layout())
            self.stdout.write(f"NGINX_CONF is set: wrote only the shared snippets under {settings.NGINX_VHOST_DIR}")
            return
        apply.write_private_main_config()
        ok, output = apply.test_config()
        if not ok:
            raise CommandError(f"nginx rejected the private config:\n{output}")
        self.stdout.write(shlex.join(apply.nginx_command("-g", "daemon off;")))
