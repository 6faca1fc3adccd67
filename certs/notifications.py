"""Alerts to a user's notification channels: renewal failed, expiring, renewed, config rejected.

`notify()` is called where the event happens, often inside that event's transaction; it
queues one `certs.tasks.send_notification` per subscribed channel once the transaction
commits, so an alert never announces something that was rolled back. Tasks carry the
channel id and the message, never the channel URL: it holds tokens and stays encrypted in
the database until the worker sends.

A channel URL is any apprise URL (json://, mailto://, tgram://, slack://, dingtalk://,
wecom://, feishu://, ...), or `django-mail://a@example.com[,b@example.com]` to send
through the panel's own Django mail settings.

Apprise logs the endpoints it posts to (tokens included) at DEBUG, and request errors
can carry them at any level: every record of the "apprise" logger passes through
`_RedactingFilter` first, which blanks every URL and every part of the channel URLs
being sent right now, so neither logs nor a channel's last_error ever show them.
"""

import datetime
import logging
import re
import smtplib
import threading
from collections import Counter
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

import apprise
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _

from certs import health
from certs.models import Certificate, NotificationChannel, NotificationEvent
from panel.toolkit import clock, outbound, validation
from panel.toolkit.task_queue import NamedTask

log = logging.getLogger(__name__)

DJANGO_MAIL_SCHEME = "django-mail://"
SEND_TIMEOUT_SECONDS = 30  # the whole apprise call; plugins also time out their own requests
TEST_TIMEOUT_SECONDS = 15  # a test is waited for on a page: it gives up sooner
REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 4  # shorter URL parts (ports, "p", "v1") are not worth mangling messages for


# --- queueing


def notify(owner_id, event, subject, body):
    """Queue `subject` and `body` for every enabled channel of `owner_id` subscribed to
    `event`, once the current transaction commits. Returns how many were queued. Never
    raises for a delivery problem: an alert must not break the work it reports on."""
    event = NotificationEvent(event)  # a wrong code is a programming error, caught by tests
    try:
        with transaction.atomic():  # a savepoint: a failed lookup leaves the caller's transaction usable
            channels = list(NotificationChannel.objects.filter(owner_id=owner_id, enabled=True)
                            .values_list("pk", "events"))
    except Exception:
        log.exception("notifications for user %s (%s) could not be looked up", owner_id, event.value)
        return 0
    queued = 0
    for channel_id, events in channels:
        if event.value in (events or []):
            transaction.on_commit(lambda cid=channel_id: enqueue(cid, event.value, subject, body), robust=True)
            queued += 1
    return queued


SEND_NOTIFICATION = NamedTask("certs.tasks.send_notification")


def enqueue(channel_id, event, subject, body):
    SEND_NOTIFICATION.delay(channel_id, event, subject, body)


# --- sending


def deliver(channel_id, subject, body):
    """The task's work: send to the channel if it still exists and is enabled."""
    channel = NotificationChannel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None:
        return None
    return send(channel, subject, body)


def send_test(channel, timeout=None):
    """Send a test message; someone waits on the page, so for at most `timeout` seconds
    (TEST_TIMEOUT_SECONDS): the sending runs in a thread of its own, given that long, whose
    every connection times out as soon. A thread still waiting is left to those timeouts,
    and the answer says the service did not reply in time."""
    timeout = TEST_TIMEOUT_SECONDS if timeout is None else timeout
    subject = _("CertPanel test notification")
    body = _("This is a test message from CertPanel for the channel “%(name)s”. "
             "Alerts will reach you here.") % {"name": channel.name}
    # Read here: the sending thread touches no database (it would hold a connection of its own).
    url, owner, allow = channel.url, channel.owner, outbound.allow_list()
    language = translation.get_language()
    outcome = []

    def attempt():
        with translation.override(language):
            outcome.append(_attempt(channel.pk, url, owner, subject, body, timeout, allow))

    sender = threading.Thread(target=attempt, name=f"test-notification-{channel.pk}", daemon=True)
    sender.start()
    sender.join(timeout)
    if outcome:
        ok, message = outcome[0]
    else:
        log.warning("notification channel %s: no answer within %ss", channel.pk, timeout)
        ok, message = False, _("No answer within %(seconds)s seconds: the service did not reply in time. Check the "
                               "URL, and that this server can reach the service.") % {"seconds": f"{timeout:g}"}
    _record(channel, ok, message)
    return ok, message


def send(channel, subject, body) -> tuple[bool, str]:
    """Send now; record the outcome on the channel. Returns (ok, a message for the user)."""
    ok, message = _attempt(channel.pk, channel.url, channel.owner, subject, body, SEND_TIMEOUT_SECONDS)
    _record(channel, ok, message)
    return ok, message


def _attempt(channel_id, url, owner, subject, body, timeout, allow=None) -> tuple[bool, str]:
    """(ok, message) of one sending to `url` under `owner`'s outbound policy, giving up on
    each connection after `timeout` seconds."""
    try:
        if url.startswith(DJANGO_MAIL_SCHEME):
            return _send_django_mail(url, subject, body, timeout)
        return _send_apprise(url, subject, body, owner, timeout, allow)
    except Exception as exc:  # noqa: BLE001 - reported on the channel, never raised
        log.error("notification channel %s: sending crashed: %s", channel_id, redact(str(exc), secret_parts(url)))
        return False, _("internal error: %(error)s") % {"error": type(exc).__name__}


def _record(channel, ok, message):
    if ok:
        NotificationChannel.objects.filter(pk=channel.pk).update(last_sent_at=timezone.now(), last_error="")
    else:
        NotificationChannel.objects.filter(pk=channel.pk).update(last_error=message)
        log.warning("notification channel %s: not sent: %s", channel.pk, message)


def _send_apprise(url, subject, body, owner, timeout, allow=None):
    with _redacting(url):
        service = apprise.Apprise.instantiate(url)
        if service is None:
            return False, _("apprise does not accept this URL")
        sender = apprise.Apprise()
        sender.add(service)
        # Every connection apprise makes (redirects, smtp= hosts of mailto://, its worker threads
        # copy the context) follows the owner's outbound policy; apprise reports failures itself.
        try:
            with outbound.guarded_for(owner, timeout=timeout, allow=allow) as policy:
                result = sender.notify(body=body, title=subject, timeout=timeout)
        except (outbound.OutboundRefused, outbound.OutboundTimeout) as exc:
            return False, str(exc)
        if policy.refused is not None:
            return False, str(policy.refused)
        if result:
            return True, _("Sent.")
        # The filter already blanked the URL in these; once more costs nothing.
        details = [redact(entry.message, secret_parts(url)) for entry in result.logs()]
    return False, "; ".join(dict.fromkeys(details)) or _("apprise could not send the message")


def _send_django_mail(url, subject, body, timeout):
    recipients = mail_recipients(url)
    try:
        # The panel's own mail server, not a user's choice: only the policy's timeouts apply.
        with outbound.guarded(restrict=False, timeout=timeout):
            mail.send_mail(subject, body, None, recipients)
    except outbound.OutboundTimeout as exc:
        return False, str(exc)
    except (smtplib.SMTPException, OSError) as exc:
        return False, _("The mail server did not take the message: %(error)s") % {"error": exc}
    return True, _("Sent.")


# --- URLs: validation and redaction


def mail_recipients(url):
    recipients = [r.strip() for r in url[len(DJANGO_MAIL_SCHEME):].split(",") if r.strip()]
    if not recipients:
        raise ValidationError(_("Give at least one address: django-mail://you@example.com"))
    for address in recipients:
        validate_email(address)
    return recipients


def clean_url(url: str, allow_internal=False) -> str:
    """The URL if one channel can be built from it. Messages never repeat the URL.
    allow_internal: admins may send to addresses of the server's own network
    (panel.toolkit.validation.validate_outbound_url)."""
    url = url.strip()
    if url.startswith(DJANGO_MAIL_SCHEME):
        try:
            mail_recipients(url)
        except ValidationError:
            raise ValidationError(_("django-mail:// takes e-mail addresses separated by commas.")) from None
        return url
    with _redacting(url):
        service = apprise.Apprise.instantiate(url)
    if service is None:
        raise ValidationError(_("Apprise does not recognise this URL (unknown scheme, or parts missing). "
                                "See the apprise documentation for your service's URL format."))
    return validation.validate_outbound_url(url, allow_internal)


def secret_parts(url: str) -> set[str]:
    """Every piece of a channel URL that might be a token: the URL itself, its user,
    password, host, path segments and query values, raw and percent-decoded."""
    parts = {url}
    try:
        split = urlsplit(url)
        pieces = [split.username, split.password, split.hostname, split.fragment,
                  *split.netloc.replace("@", "/").replace(":", "/").split("/"),
                  *split.path.split("/"),
                  *(value for pair in split.query.split("&") for value in pair.split("=", 1)[1:])]
    except ValueError:
        pieces = re.split(r"[/:@?&=#]+", url)
    for piece in pieces:
        if piece:
            parts.update((piece, unquote(piece)))
    return {p for p in parts if len(p) >= _MIN_SECRET_LENGTH}


_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*(?=://)")


def redacted_url(url: str) -> str:
    """What a page may show of a channel URL: its scheme, i.e. the kind of service."""
    scheme = _SCHEME.match(url)
    return f"{scheme.group(0) if scheme else ''}://{REDACTED}"


_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://[^\s'\"<>]+")


def redact(text: str, secrets=()) -> str:
    text = _URL.sub(lambda m: f"{m.group(1)}://{REDACTED}", text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    """Blanks URLs, and the parts of every channel URL being sent, in apprise's records."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.active = Counter()  # secret -> how many sends in flight use it (threads may overlap)

    def filter(self, record):
        with self.lock:
            secrets = list(self.active)
        message = record.getMessage()
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info:
            # Exception texts (a requests error names the URL it failed on) are cleaned too.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secrets)
            record.exc_info = None
        return True


_filter = _RedactingFilter()
logging.getLogger("apprise").addFilter(_filter)  # the one logger every apprise plugin uses


@contextmanager
def _redacting(url):
    parts = secret_parts(url)
    with _filter.lock:
        _filter.active.update(parts)
    try:
        yield
    finally:
        with _filter.lock:
            _filter.active.subtract(parts)
            for part in parts:
                if _filter.active[part] <= 0:
                    del _filter.active[part]


# --- the expiry alert


def alert_key(certificate_id, day):
    return f"expiry-alert:{certificate_id}:{day:%Y-%m-%d}"


def expiry_alerts(now=None):
    """Alert on every certificate whose current version expires within
    EXPIRY_ALERT_DAYS, i.e. that no renewal has replaced yet, unless it is not meant to renew
    (certs.health.RETIRED); at most once per certificate per day, however often this runs.
    Returns the ids alerted on."""
    from django.conf import settings

    now = now or clock.now()
    horizon = now + datetime.timedelta(days=settings.EXPIRY_ALERT_DAYS)
    expiring = Certificate.objects.with_current_version().filter(
        current_version__not_after__gt=now, current_version__not_after__lte=horizon
    ).exclude(health.RETIRED)
    alerted = []
    for cert in expiring.iterator():
        if not cache.add(alert_key(cert.pk, now.date()), 1, timeout=2 * 24 * 3600):
            continue
        notify(cert.owner_id, NotificationEvent.EXPIRING, *expiring_message(cert, now))
        alerted.append(cert.pk)
    return alerted


def expiring_message(cert, now):
    names = ", ".join(cert.domains)
    not_after = cert.current_version.not_after
    left = not_after - now
    when = (_("in %(days)d days") % {"days": left.days} if left.days >= 2
            else _("in %(hours)d hours") % {"hours": max(1, int(left.total_seconds() // 3600))})
    lines = [_("The certificate for %(names)s expires %(when)s (%(at)s UTC) and has not been renewed.")
             % {"names": names, "when": when, "at": f"{not_after:%Y-%m-%d %H:%M}"}]
    if cert.last_error:
        lines.append(_("Last renewal error: %(error)s") % {"error": cert.last_error})
    if cert.next_renewal_at:
        lines.append(_("Next renewal attempt: %(at)s UTC") % {"at": f"{cert.next_renewal_at:%Y-%m-%d %H:%M}"})
    return _("Expiring: %(names)s") % {"names": names}, "\n".join(lines)
