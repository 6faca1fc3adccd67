import shlex
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from panel.deployment.nginx import apply, panel_vhost
from panel.deployment.nginx.render import render_system_include
from panel.toolkit.files import write_atomic


class Command(BaseCommand):
    help = ("Write the private nginx's main config, the shared snippets and the panel's own vhost "
            "(CERTPANEL_PANEL_PORT), then print the nginx command line; with the system nginx (NGINX_CONF "
            "set), write the shared snippets and the panel's vhost only.")

    def add_arguments(self, parser):
        parser.add_argument("--system-include", metavar="PATH",
                            help="also write the file the system nginx's conf.d holds (scripts/install)")

    def handle(self, *args, system_include=None, **options):
        if not settings.NGINX_PRIVATE:
            layout = apply.layout()
            apply.ensure_shared_files(layout)
            if system_include:
                path = Path(system_include)
                text = render_system_include(layout)  # default servers unless CERTPANEL_KEEP_NGINX_CONFIG
                if not path.is_file() or path.read_text() != text:
                    write_atomic(path, text, mode=0o644)
                    self.stdout.write(f"wrote {path}")
            self._write_panel_vhost(reload=False)
            self.stdout.write(f"NGINX_CONF is set: wrote only the shared snippets (and the panel's vhost, if "
                              f"CERTPANEL_PANEL_PORT is set) under {settings.NGINX_VHOST_DIR}; reload nginx to use them")
            return
        if system_include:
            raise CommandError("--system-include is for the system nginx: set NGINX_CONF")
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
