from django.apps import AppConfig


class PanelConfig(AppConfig):
    name = "panel"
    verbose_name = "Hosting"

    def ready(self):
        # Django's place for signal receivers: the models are loaded by now.
        from panel.security import audit

        audit.connect_signals()
