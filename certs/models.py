import json
import uuid

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from panel.toolkit.encryption import EncryptedTextField
from panel.toolkit.validation import unicode_domain


class KeyType(models.TextChoices):
    EC256 = "ec256", _("EC P-256")
    EC384 = "ec384", _("EC P-384")
    RSA2048 = "rsa2048", _("RSA 2048")
    RSA3072 = "rsa3072", _("RSA 3072")
    RSA4096 = "rsa4096", _("RSA 4096")

    @classmethod
    def of_key(cls, private_key):
        """The type of a private key (a cryptography key object); None for one the panel does not issue."""
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            return EC_KEY_TYPES.get(private_key.curve.name)
        if isinstance(private_key, rsa.RSAPrivateKey):
            return RSA_KEY_TYPES.get(private_key.key_size)
        return None


# By curve name and by modulus size, as the keys and other ACME clients' settings say them.
EC_KEY_TYPES = {"secp256r1": KeyType.EC256, "secp384r1": KeyType.EC384}
RSA_KEY_TYPES = {2048: KeyType.RSA2048, 3072: KeyType.RSA3072, 4096: KeyType.RSA4096}


class ChallengeType(models.TextChoices):
    HTTP01 = "http-01", _("HTTP-01 (file served by the panel)")
    DNS01 = "dns-01", _("DNS-01 through a DNS provider's API")
    DNS01_MANUAL = "dns-01-manual", _("DNS-01, records added by hand")
    # For servers the panel does not manage (admins only; certs/challenges/external.py).
    HTTP01_WEBROOT = "http-01-webroot", _("HTTP-01, file written under a document root")
    HTTP01_STANDALONE = "http-01-standalone", _("HTTP-01, answered by the panel on the HTTP port for a moment")
    HTTP01_NGINX = "http-01-nginx", _("HTTP-01 through a hand-made nginx config, restored afterwards")
    HTTP01_APACHE = "http-01-apache", _("HTTP-01 through a hand-made Apache config, restored afterwards")

    @property
    def acme_type(self):
        """The ACME challenge type answered for this method."""
        return "dns-01" if self in (ChallengeType.DNS01, ChallengeType.DNS01_MANUAL) else "http-01"

    @property
    def is_external(self):
        """Validated on a server the panel does not manage: admins only."""
        return self in EXTERNAL_CHALLENGES


EXTERNAL_CHALLENGES = (ChallengeType.HTTP01_WEBROOT, ChallengeType.HTTP01_STANDALONE, ChallengeType.HTTP01_NGINX,
                       ChallengeType.HTTP01_APACHE)
# The methods a site's own issue form offers: the panel's nginx serves the site.
SITE_CHALLENGES = (ChallengeType.HTTP01, ChallengeType.DNS01, ChallengeType.DNS01_MANUAL)


class DnsCredential(models.Model):
    """Credentials for one DNS provider account, reused by any number of certificates."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dns_credentials")
    provider = models.CharField(max_length=64, help_text=_("A code from certs.dns.registry"))
    name = models.CharField(max_length=200)
    # JSON object of the provider's declared fields; never shown again after saving.
    credentials = EncryptedTextField()
    # Seconds to wait for the TXT records to show on every authoritative server;
    # blank: the provider's default. Used at issuance and renewal alike.
    propagation_timeout = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def values(self) -> dict:
        return json.loads(self.credentials or "{}")


class AcmeAccount(models.Model):
    """An account at an ACME CA, with its own key. Registered when created."""

    class Status(models.TextChoices):
        VALID = "valid", _("Valid")
        DEACTIVATED = "deactivated", _("Deactivated")
        REVOKED = "revoked", _("Revoked")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="acme_accounts")
    directory_url = models.URLField(max_length=1024)
    email = models.EmailField(blank=True)
    eab_kid = models.CharField(max_length=512, blank=True)
    eab_hmac_key = EncryptedTextField(blank=True)
    account_key = EncryptedTextField(help_text=_("PEM private key of the account"))
    account_url = models.URLField(max_length=1024, help_text=_("The account's URL at the CA (its kid)"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        email = self.email or _("no e-mail")  # outside the f-string, where xgettext finds it
        return f"{email} @ {self.directory_url}"


class CertificateQuerySet(models.QuerySet):
    def with_current_version(self):
        """Joined with the current version, minus its private key: lists and status pages
        need dates and serials, and should not decrypt a key per row."""
        return self.select_related("current_version").defer("current_version__private_key")

    def renewable(self):
        """Certificates the panel ordered itself: an uploaded one has no ACME account to renew with."""
        return self.filter(source=Certificate.Source.ISSUED)

    def for_list(self):
        """with_current_version() for list pages: dates and status only, so that sorting and
        paging do not carry every certificate's PEM text along."""
        return self.with_current_version().defer("current_version__cert_pem", "current_version__chain_pem")


class Certificate(models.Model):
    """A set of names to keep a valid certificate for, renewed over time."""

    objects = CertificateQuerySet.as_manager()

    class Status(models.TextChoices):
        PENDING = "pending", _("Being issued")
        VALID = "valid", _("Valid")
        FAILED = "failed", _("Failed")

    class Source(models.TextChoices):
        ISSUED = "issued", _("Issued through ACME")
        UPLOADED = "uploaded", _("Uploaded")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certificates")
    site = models.ForeignKey("panel.Site", null=True, blank=True, on_delete=models.SET_NULL, related_name="certificates")
    # Empty only for an uploaded certificate: it was issued elsewhere, so it is never ordered or renewed here.
    account = models.ForeignKey(AcmeAccount, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="certificates")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ISSUED)
    domains = models.JSONField()
    key_type = models.CharField(max_length=8, choices=KeyType.choices, default=KeyType.EC256)
    challenge = models.CharField(max_length=24, choices=ChallengeType.choices, default=ChallengeType.HTTP01)
    dns_credential = models.ForeignKey(DnsCredential, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="certificates")
    # acme.sh --challenge-alias: _acme-challenge.<name> is a CNAME to _acme-challenge.<alias>.
    challenge_alias = models.CharField(max_length=253, blank=True)
    # http-01-webroot: the document root the token is written under (below settings.WEBROOT_ROOTS).
    webroot = models.CharField(max_length=4096, blank=True)
    # http-01-nginx / -apache: the hand-made server config to add the challenge to for a moment
    # (below settings.EXTERNAL_CONFIG_ROOTS).
    server_config = models.CharField(max_length=4096, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    current_version = models.ForeignKey(
        "CertificateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the renewal sweep next starts an order: inside the CA's ARI window when it offers
    # one, else when a third of the lifetime is left; after a failure, the next attempt.
    next_renewal_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    # The same failure as a message id and params (certs.problems), shown in the reader's language;
    # NULL when last_error is empty or was stored before.
    last_failure = models.JSONField(null=True, blank=True)
    renewal_failures = models.PositiveIntegerField(default=0)
    # Its owner stopped renewing it (its site was deleted): unlike a renewal that failed, it is
    # not expected to renew, so it is never "expiring"; a renewal asked for by hand clears it.
    renewal_stopped = models.BooleanField(default=False)
    # ARI (RFC 9773): the CA's suggested window, and when to ask again.
    ari_window_start = models.DateTimeField(null=True, blank=True)
    ari_window_end = models.DateTimeField(null=True, blank=True)
    ari_check_after = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return ", ".join(self.domains)

    @property
    def is_uploaded(self):
        return self.source == self.Source.UPLOADED

    def active_order(self):
        return self.orders.exclude(status__in=Order.FINISHED).first()

    def latest_order(self):
        return self.orders.order_by("-id").first()


class CertificateVersion(models.Model):
    """One issued certificate. Exactly one per successful order."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="versions")
    order = models.OneToOneField("Order", null=True, on_delete=models.SET_NULL, related_name="version")
    cert_pem = models.TextField(help_text=_("The leaf certificate"))
    chain_pem = models.TextField(help_text=_("Leaf followed by intermediates (fullchain)"))
    private_key = EncryptedTextField()
    serial = models.CharField(max_length=128)
    issuer = models.CharField(max_length=1024)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)  # certs.renewal.policy.due: "not too young"

    class Meta:
        ordering = ["-created_at"]
        # The importers ask whether an owner already has a certificate, by serial and issuer.
        indexes = [models.Index(fields=["serial"], name="certs_version_serial")]

    def __str__(self):
        return f"{', '.join(self.certificate.domains)} (serial {self.serial})"


class Order(models.Model):
    """One ACME order, advanced a step at a time by certs.tasks.advance_order."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        AUTHORIZING = "authorizing", _("Answering challenges")
        PROPAGATING = "propagating", _("Waiting for DNS")
        AWAITING_USER = "awaiting_user", _("Waiting for you")
        VALIDATING = "validating", _("CA is validating")
        FINALIZING = "finalizing", _("Finalizing")
        VALID = "valid", _("Valid")
        INVALID = "invalid", _("Failed")

    FINISHED = (Status.VALID, Status.INVALID)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders")
    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    is_renewal = models.BooleanField(default=False)
    # ARI: the certificate (its ARI id) this order replaces, sent as `replaces` when the CA supports it.
    replaces = models.CharField(max_length=512, blank=True)
    # The order's own key and CSR, made once so a repeated step sends the same request.
    private_key = EncryptedTextField(blank=True)
    csr_pem = models.TextField(blank=True)
    acme_url = models.URLField(max_length=1024, blank=True)
    finalize_url = models.URLField(max_length=1024, blank=True)
    certificate_url = models.URLField(max_length=1024, blank=True)
    error = models.TextField(blank=True, help_text=_("The CA's problem document, or what went wrong"))
    # `error` as a message id and params (certs.problems), read in the reader's language.
    failure = models.JSONField(null=True, blank=True)
    # Only a task carrying the current wakeup may run the next step; see certs.tasks.
    wakeup = models.UUIDField(default=uuid.uuid4)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When the next step is due; a beat sweep re-queues orders far past it.
    next_step_at = models.DateTimeField(default=timezone.now, db_index=True)
    # DNS-01: give up waiting for the TXT records after this; the user may skip the check.
    propagation_deadline = models.DateTimeField(null=True, blank=True)
    user_continued = models.BooleanField(default=False)
    step_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A certificate never has two orders in flight.
            models.UniqueConstraint(
                fields=["certificate"],
                condition=~models.Q(status__in=["valid", "invalid"]),
                name="one_active_order_per_certificate",
            )
        ]

    @property
    def finished(self):
        return self.status in self.FINISHED

    def log(self, message, level="info", **params):
        """Record a log line. `message` is an English msgid marked with gettext_noop, with
        %(name)s placeholders filled from `params` (JSON values) when the line is read, so
        every reader sees it in their own language. Text from the CA goes in a param, as is."""
        OrderLogEntry.objects.create(order=self, level=level, message=message, params=params)


class OrderLogEntry(models.Model):
    """A line of an order's readable log, shown in the UI and the API."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="log_entries")
    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()  # an English msgid; in rows from before `params`, the final English text
    params = models.JSONField(null=True)  # NULL marks those older rows

    class Meta:
        ordering = ["id"]

    @property
    def text(self):
        """The line in the active language. A param may itself be a failure stored as
        {"message", "params"} (certs.problems): its message is put in the same language."""
        return self._text(lambda value: value)

    @property
    def shown(self):
        """The line as the pages show it: the names it is about in Unicode, as people type an
        IDN, not in punycode (the API and the records to add keep the stored form)."""
        return self._text(lambda value: ", ".join(map(unicode_domain, value.split(", "))))

    def _text(self, show_names):
        if self.params is None:
            return self.message
        return _filled(self.message, {
            key: _filled(value["message"], value.get("params") or {})
            if isinstance(value, dict) and "message" in value
            else show_names(value) if key in NAME_PARAMS and isinstance(value, str) else value
            for key, value in self.params.items()})

    @property
    def raw(self):
        """The raw text (an exception, the CA's words) of a failure in the params: a fold-out."""
        nested = [value.get("params") or {} for value in (self.params or {}).values()
                  if isinstance(value, dict)]
        return next((params["raw"] for params in nested if params.get("raw")), "")


NAME_PARAMS = ("name", "names")  # the params of log lines that hold the names an order is for


def _filled(message, params):
    translated = gettext(message)
    try:
        return translated % params if params else translated
    except (KeyError, TypeError, ValueError):  # a translation that lost a placeholder
        return translated


class Authorization(models.Model):
    """The CA's authorization for one identifier of an order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="authorizations")
    url = models.URLField(max_length=1024)
    identifier = models.CharField(max_length=253)
    wildcard = models.BooleanField(default=False)
    status = models.CharField(max_length=16, default="pending")
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]


class Challenge(models.Model):
    """The challenge the panel chose to answer for an authorization."""

    authorization = models.ForeignKey(Authorization, on_delete=models.CASCADE, related_name="challenges")
    type = models.CharField(max_length=16)
    url = models.URLField(max_length=1024)
    token = models.CharField(max_length=256)
    status = models.CharField(max_length=16, default="pending")
    answered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    cleaned_up = models.BooleanField(default=False)
    # DNS-01: the TXT record to publish, and what the provider needs to remove exactly it;
    # external HTTP-01 modes: what the mode presented (certs/challenges/external.py).
    record_name = models.CharField(max_length=300, blank=True)
    record_value = models.CharField(max_length=128, blank=True)
    provider_state = models.JSONField(default=dict, blank=True)
    presented_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]


class NotificationEvent(models.TextChoices):
    RENEWAL_FAILED = "renewal_failed", _("Renewal failed")
    EXPIRING = "expiring", _("Expiring without a successful renewal")
    RENEWED = "renewed", _("Renewed")
    CONFIG_REJECTED = "config_rejected", _("Site config rejected by nginx")


def all_notification_events():
    return list(NotificationEvent.values)


class NotificationChannel(models.Model):
    """Where a user's alerts go: any apprise URL, or django-mail://to@example.com for the
    panel's own mail settings. The URL holds tokens: stored encrypted, never shown again."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="notification_channels")
    name = models.CharField(max_length=200)
    url = EncryptedTextField()
    events = models.JSONField(default=all_notification_events, help_text=_("NotificationEvent values"))
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_error = models.TextField(blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class ReloadPreset(models.Model):
    """A command an administrator allows to run after certificate files are installed, e.g.
    ["/usr/bin/systemctl", "reload", "nginx"]. Users pick presets; they never write commands.

    The command is an argv list run without a shell, so nothing in it is ever parsed as
    shell syntax. Created by administrators (pages, API), or by an import, which carries the
    other client's hook over as its text; call full_clean().

    A user picks from their own presets and the shared ones (see visible_to). Only an
    administrator's preset (or one without an owner: made before presets had owners) can be
    shared. A preset a non-administrator's import made runs only once an administrator has
    approved it: the command runs on this server as the panel's user."""

    name = models.CharField(max_length=100, unique=True)
    command = models.JSONField(help_text=_('The program and its arguments, e.g. ["/usr/bin/systemctl", "reload", '
                                           '"nginx"]'))
    timeout_seconds = models.PositiveIntegerField(default=60)
    # SET_NULL: install targets of other users may still run it; no owner reads as an administrator's.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="reload_presets")
    shared = models.BooleanField(_("offered to every user"), default=False)
    approved = models.BooleanField(_("approved to run"), default=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        command = self.command
        if (not isinstance(command, list) or not command
                or not all(isinstance(word, str) and word and "\x00" not in word for word in command)):
            raise ValidationError({"command": _("Give the command as a list of words (program, then arguments), "
                                                "never as one shell string.")})
        if not command[0].startswith("/"):
            raise ValidationError({"command": _("Name the program by its absolute path, e.g. /usr/bin/systemctl.")})
        if not 1 <= self.timeout_seconds <= 3600:
            raise ValidationError({"timeout_seconds": _("Give a timeout between 1 and 3600 seconds.")})
        if self.shared and self.owner_id is not None and not self.owner.is_superuser:
            raise ValidationError({"shared": _("Only an administrator's preset can be offered to every user: this "
                                               "one belongs to %(user)s.") % {"user": self.owner.get_username()}})
        if self.shared and not self.approved:
            raise ValidationError({"shared": _("Approve the preset before offering it to every user.")})


class InstallTarget(models.Model):
    """Where a certificate's files are copied after every issuance and renewal, like
    acme.sh --install-cert; then a reload preset runs. Paths lie below settings.INSTALL_ROOTS."""

    class Status(models.TextChoices):
        NEVER = "never", _("Not run yet")
        OK = "ok", _("Installed")
        FAILED = "failed", _("Failed")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="install_targets")
    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="install_targets")
    # Each optional, at least one: the private key, the leaf, the intermediates, leaf + intermediates.
    key_path = models.CharField(max_length=4096, blank=True)
    cert_path = models.CharField(max_length=4096, blank=True)
    chain_path = models.CharField(max_length=4096, blank=True)
    fullchain_path = models.CharField(max_length=4096, blank=True)
    key_mode = models.PositiveSmallIntegerField(default=0o600)
    cert_mode = models.PositiveSmallIntegerField(default=0o644, help_text=_("For the certificate, chain and "
                                                                            "fullchain files"))
    reload_preset = models.ForeignKey(ReloadPreset, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="install_targets")
    last_status = models.CharField(max_length=8, choices=Status.choices, default=Status.NEVER)
    # What went wrong, in words: an OS error or the tail of the preset's output, never a key.
    last_error = models.TextField(blank=True)
    last_failure = models.JSONField(null=True, blank=True)  # the same as a message id and params
    last_run_at = models.DateTimeField(null=True, blank=True)
    # When an install was last queued: queued after the last run and long ago means the task was
    # lost with its broker, and panel.deployment.dispatch.resume_stalled_installs queues it again.
    queued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    PATH_FIELDS = ("key_path", "cert_path", "chain_path", "fullchain_path")

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return ", ".join(self.paths().values())

    def paths(self) -> dict:
        """{field name: path} of the files this target writes."""
        return {field: getattr(self, field) for field in self.PATH_FIELDS if getattr(self, field)}
