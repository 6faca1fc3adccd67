"""The left navigation, as data: the frame (templates/base.html) draws what this lists.

A view marks its entry as the current page with `nav` in its context (e.g. "sites")."""

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from panel.toolkit import access

# (key, URL name, label), in the order shown.
ENTRIES = (
    ("dashboard", "ui:dashboard", _("Dashboard")),
    ("sites", "ui:site-list", _("Sites")),
    ("certificates", "ui:certificate-list", _("Certificates")),
    ("renewals", "ui:renewal-overview", _("Renewals")),
    ("dns", "ui:dns-credential-list", _("DNS credentials")),
    ("accounts", "ui:account-list", _("ACME accounts")),
    ("notifications", "ui:notification-list", _("Notifications")),
)
# For admins only (panel.toolkit.access.is_admin). An entry appears once its URL exists.
STAFF_ENTRIES = (
    ("users", "ui:user-list", _("Users")),
    ("reload-presets", "ui:reload-preset-list", _("Reload presets")),
    ("import", "ui:import", _("Import from acme.sh / certbot")),
    ("audit", "ui:audit-log", _("Audit log")),
    ("settings", "ui:settings", _("Settings")),
)


def _existing(entries):
    for key, url_name, label in entries:
        try:
            yield {"key": key, "url": reverse(url_name), "label": label}
        except NoReverseMatch:
            continue


def navigation(request):
    """Context processor: `navigation`, the entries this user may follow, each with its URL."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    entries = [{"key": key, "url": reverse(url_name), "label": label} for key, url_name, label in ENTRIES]
    if access.is_admin(user):
        entries += _existing(STAFF_ENTRIES)
    return {"navigation": entries}
