from django.apps import AppConfig

from panel.toolkit import outbound


class PanelConfig(AppConfig):
    name = "panel"
    verbose_name = "Hosting"

    def ready(self):
        # Django's place for signal receivers and other set-up: the models are loaded by now.
        from panel.models import PanelSettings  # models can be imported only once the apps are ready
        from panel.security import audit  # its receivers import models too

        audit.connect_signals()
        # The toolkit imports nothing of the project: the allow-list it enforces comes through this hook.
        outbound.install()
        outbound.use_allow_list(lambda: outbound.parse_allow_list(PanelSettings.load().outbound_allow_list))
