"""The panel's own domain (settings.PANEL_PORT): setting it gives the panel a certificate through
its own pipeline, an ordinary certificate of the administrator who set it, validated with HTTP-01
through the managed nginx at the default CA (the Settings page). It renews like any other; each
new version is put in service on the panel's vhost (panel.deployment.dispatch.put_in_service),
and nginx reloads: no restart.

Used by the panel's HTTPS page (panel.hosting.panel_https_views) and `manage.py panel_domain`."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from certs import accounts, certificates, orders
from certs.models import Certificate, ChallengeType, KeyType
from panel.deployment import dispatch
from panel.models import PanelHttps, SiteDomain
from panel.security import audit
from panel.toolkit import task_queue, validation


def current():
    return PanelHttps.load()


def clean_domain(value) -> str:
    """The domain as stored; raises ValidationError saying why it cannot be the panel's."""
    if not settings.PANEL_PORT:
        raise ValidationError(_("The panel is not served over HTTPS on its own port (CERTPANEL_PANEL_PORT "
                                "is not set), so it cannot have a domain certificate."))
    name = validation.normalize_domain(value, allow_wildcard=False)
    if SiteDomain.objects.filter(name=name).exists():
        raise ValidationError(_("%(name)s is a name of a site; choose a name no site serves.") % {"name": name})
    return name


def set_domain(value, actor, request=None) -> PanelHttps:
    """Make `value` the panel's domain and order its certificate at the default CA (in
    `actor`'s account there, registered now if they have none). Setting the same domain again
    orders again only if its certificate has no version and no order running (a failed first
    order). Raises ValidationError, QueueUnavailable or certs.acme.AcmeError (the CA refused the
    registration); nothing changes then."""
    name = clean_domain(value)
    row = current()
    if row.domain == name and row.certificate_id:
        certificate = row.certificate
        if certificate.current_version_id is None and certificate.active_order() is None:
            orders.start_order(certificate)
        return row
    preset = accounts.default_ca()
    if preset is None:
        raise ValidationError(_("The default certificate authority needs External Account Binding; choose one "
                                "that does not on the Settings page."))
    task_queue.require_reachable()
    account = accounts.account_at(actor, preset)
    if account is None:  # a network call to the CA: before the transaction
        account = accounts.register_account(actor, preset.directory_url, email=actor.email)
    with transaction.atomic():
        certificate = certificates.request_certificate(actor, account, [name], KeyType.EC256, ChallengeType.HTTP01)
        _retire(row)
        row.domain, row.certificate = name, certificate
        row.save()
        audit.record(request, audit.Action.CHANGE, certificate, panel_domain=name)
        dispatch.queue_panel_vhost()
    return row


def clear_domain(request=None) -> PanelHttps:
    """The panel goes back to its self-signed certificate; the domain's certificate is no longer
    renewed (its current version stays valid until it expires)."""
    row = current()
    with transaction.atomic():
        certificate = row.certificate
        _retire(row)
        row.domain, row.certificate = "", None
        row.save()
        if certificate is not None:
            audit.record(request, audit.Action.CHANGE, certificate, panel_domain="")
        dispatch.queue_panel_vhost()
    return row


def _retire(row):
    """The panel's previous certificate no longer serves it: stop renewing it (its order would
    fail: nothing answers HTTP-01 for its name any more)."""
    if row.certificate_id:
        Certificate.objects.filter(pk=row.certificate_id).update(renewal_stopped=True)


def set_initial_domain():
    """CERTPANEL_PANEL_DOMAIN, at start: set it if no domain was ever set (or cleared) here, as
    the first superuser. Returns the row, or None when there was nothing to do."""
    if not (settings.PANEL_PORT and settings.PANEL_DOMAIN) or PanelHttps.objects.filter(pk=1).exists():
        return None
    admin = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if admin is None:
        return None
    return set_domain(settings.PANEL_DOMAIN, admin)
