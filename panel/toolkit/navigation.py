"""The left navigation, as data: the frame (templates/base.html) draws what this lists.

A view marks its entry as the current page with `nav` in its context (e.g. "sites"). A detour
(add an account, then back) carries where it came from in `next`: local_path checks it."""

from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
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
    ("panel-https", "ui:panel-https", _("Panel HTTPS")),
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


def local_path(value):
    """`value` when it is a path on this panel (a detour's `next`: where to go back to), else "".
    Never another host: "//evil.example" and "https://…" are refused, as is anything Django's
    own check of redirect targets refuses, and control characters (browsers drop tabs, so
    "/<tab>/evil.example" would become "//evil.example")."""
    value = value or ""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return ""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return ""
    return value if url_has_allowed_host_and_scheme(value, allowed_hosts=set()) else ""
