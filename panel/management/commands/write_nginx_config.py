import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from panel.deployment.nginx import apply, panel_vhost


class Command(BaseCommand):
    help = ("Write the private nginx's main config, the shared snippets and the panel's own vhost "
            "(CERTPANEL_PANEL_PORT), then print the nginx command line.")

    def handle(self, *args, **options):
        if not settings.NGINX_PRIVATE:
            apply.ensure_shared_files(apply.layout())
            self._write_panel_vhost(reload=False)
            self.stdout.write(f"NGINX_CONF is set: wrote only the shared snippets (and the panel's vhost, if "
                              f"CERTPANEL_PANEL_PORT is set) under {settings.NGINX_VHOST_DIR}; reload nginx to use them")
            return
        apply.write_private_main_config()
        self._write_panel_vhost(reload=False)  # nginx starts with it
        ok, output = apply.test_config()
        if not ok:
            raise CommandError(f"nginx rejected the private config:\n{output}")
        self.stdout.write(shlex.join(apply.nginx_command("-g", "daemon off;")))

    def _write_panel_vhost(self, reload):
        ok, output = panel_vhost.install(reload=reload)
        if not ok:
            raise CommandError(f"nginx rejected the panel's vhost:\n{output}")
