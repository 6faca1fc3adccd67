from django.apps import AppConfig


class PanelConfig(AppConfig):
    name = "panel"
    verbose_name = "Hosting"

    def ready(self):
        from panel.security import audit

        audit.connect_signals()
