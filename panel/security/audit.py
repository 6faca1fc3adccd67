"""The audit log: who did what to which object, when, from which address, and through what.

One way in, `record(request_or_none, action, obj=None, **details)`. It is called from three
kinds of places, each chosen for being the one that cannot be forgotten:

- object create / change / delete: `post_save` / `post_delete` signals of the audited
  models (AUDITED_MODELS), recorded only while a request is being served
  (`RequestContextMiddleware` remembers it). Signals, not calls in every view, because the
  UI and the API each have their own write paths and other pages keep being added: a new
  view that saves a Site is audited without anyone remembering to. Saves by the worker
  (order steps, nginx status) are bookkeeping, not someone's action, and are not recorded.
- logins, logouts, failed logins: Django's auth signals.
- issuance (the worker), revocation, private-key downloads, token revocation: explicit
  calls where they happen; they are not plain saves of an audited model.
- every write through an API token: `RequestContextMiddleware`, after the response, so
  its status is known and no API view can miss it.

Details never carry secrets: callers pass names, formats and field names, never values
of secret fields.
"""

import contextvars
import ipaddress

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save

from panel.models import Action, AuditEntry, ObjectType, Via

# Models whose create / change / delete are recorded (see the module docstring), and
# the object type each is recorded as.
AUDITED_MODELS = {
    "panel.Site": ObjectType.SITE,
    "certs.Certificate": ObjectType.CERTIFICATE,
    "certs.DnsCredential": ObjectType.DNS_CREDENTIAL,
    "certs.AcmeAccount": ObjectType.ACME_ACCOUNT,
    "certs.NotificationChannel": ObjectType.NOTIFICATION_CHANNEL,
    "certs.InstallTarget": ObjectType.INSTALL_TARGET,
    "panel.ApiToken": ObjectType.API_TOKEN,
}
# Types of objects recorded by explicit calls only.
_OTHER_TYPES = {
    "auth.User": ObjectType.USER,
    "certs.CertificateVersion": ObjectType.CERTIFICATE_VERSION,
}


# --- recording

_current_request = contextvars.ContextVar("audit_request", default=None)


def record_revocations(request, versions):
    """Certificate versions revoked at the CA (the version page, the API, a site's deletion),
    each with the reason it was revoked for."""
    for version in versions:
        record(request, Action.REVOKE, version, reason=version.revocation_reason)


def record(request_or_none, action, obj=None, **details):
    """Store one entry. With a request, the actor is its user and the address its client's;
    without one (the worker, a management command) it is done by the system on behalf of
    the object's owner. `details` must hold nothing secret."""
    request = request_or_none
    if request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
        via = Via.API_TOKEN if api_token_of(request) is not None else Via.UI
        address = client_address(request)
    else:
        actor, via, address = _owner_of(obj), Via.SYSTEM, None
    object_type = object_id = object_label = ""
    if obj is not None:
        object_type = _object_type(obj)
        object_id, object_label = str(obj.pk or ""), _label(obj)
    return AuditEntry.objects.create(
        actor=actor, actor_label=actor.get_username() if actor else "", action=action, object_type=object_type,
        object_id=object_id, object_label=object_label[:255], address=address, via=via, details=details,
    )


def api_token_of(request):
    """The ApiToken a request was authenticated with, if any (set by panel.security.tokens)."""
    return getattr(request, "api_token", None)


def client_address(request):
    """REMOTE_ADDR; behind a configured trusted proxy (CERTPANEL_TRUSTED_PROXIES), the
    nearest X-Forwarded-For address that is not itself one of those proxies. A client can
    write anything into X-Forwarded-For, so it is believed only from those proxies."""
    address = _ip(request.META.get("REMOTE_ADDR", ""))
    if address is None and _behind_panel_socket(request):
        # gunicorn on a UNIX socket behind the panel's own nginx, which replaces X-Forwarded-For.
        return str(_ip(request.META["HTTP_X_FORWARDED_FOR"].split(",")[-1]) or "") or None
    if address is None or not _is_trusted_proxy(address):
        return address and str(address)
    hops = [_ip(hop) for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed(hops):
        if hop is None:
            break  # garbage from the client's side of the chain: stop believing it
        address = hop
        if not _is_trusted_proxy(hop):
            break
    return str(address)


def _behind_panel_socket(request):
    return (settings.PANEL_PORT and settings.PANEL_UPSTREAM.startswith("unix:")
            and not request.META.get("REMOTE_ADDR") and "HTTP_X_FORWARDED_FOR" in request.META)


def _ip(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _is_trusted_proxy(address):
    return any(address in network for network in settings.TRUSTED_PROXIES)


def _model_label(obj):
    return obj._meta.label


def _object_type(obj):
    label = _model_label(obj)
    return AUDITED_MODELS.get(label) or _OTHER_TYPES.get(label) or obj._meta.model_name


def _label(obj):
    if _model_label(obj) == "auth.User":
        return obj.get_username()
    return str(obj)


def _owner_of(obj):
    owner_id = getattr(obj, "owner_id", None)
    if owner_id is None and hasattr(obj, "certificate"):
        owner_id = obj.certificate.owner_id
    if owner_id is None:
        return None
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=owner_id).first()


# --- the request context: object changes and token writes


class RequestContextMiddleware:
    """Remembers the request being served for the object signals, and records every write
    made through an API token once its response is known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reset = _current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _current_request.reset(reset)
        if request.method not in ("GET", "HEAD", "OPTIONS") and api_token_of(request) is not None:
            record(request, Action.API_WRITE, method=request.method, path=request.path,
                   status=response.status_code)
        return response


def _on_save(sender, instance, created, update_fields=None, **kwargs):
    request = _current_request.get()
    if request is None or kwargs.get("raw"):
        return
    details = {"fields": sorted(update_fields)} if update_fields and not created else {}
    record(request, Action.CREATE if created else Action.CHANGE, instance, **details)


def _on_delete(sender, instance, **kwargs):
    request = _current_request.get()
    if request is not None:
        record(request, Action.DELETE, instance)


def _on_login(sender, request, user, **kwargs):
    record(request, Action.LOGIN, user)


def _on_logout(sender, request, user, **kwargs):
    if user is not None:  # sent before the session ends: request.user is still the user
        record(request, Action.LOGOUT, user)


def _on_login_failed(sender, credentials, request=None, **kwargs):
    # `credentials` has the password masked already; only the name tried is kept. The
    # account it names, if there is one, is the object.
    from django.contrib.auth import get_user_model

    tried = str(credentials.get(get_user_model().USERNAME_FIELD, ""))[:150]
    account = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: tried}).first()
    record(request, Action.LOGIN_FAILED, account, username=tried)


def connect_signals():
    """Called once from PanelConfig.ready()."""
    from django.apps import apps

    for label in AUDITED_MODELS:
        model = apps.get_model(label)
        post_save.connect(_on_save, sender=model, dispatch_uid=f"audit-save-{label}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"audit-delete-{label}")
    user_logged_in.connect(_on_login, dispatch_uid="audit-login")
    user_logged_out.connect(_on_logout, dispatch_uid="audit-logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="audit-login-failed")
