from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator

from certs.models import CertificateVersion
from panel.toolkit.encryption import EncryptedTextField
from panel.toolkit.validation import name_covers


class Site(models.Model):
    """A website the panel serves through nginx: static files or a reverse proxy."""

    class ConfigStatus(models.TextChoices):
        PENDING = "pending", _("Waiting to be applied")
        APPLIED = "applied", _("Applied")
        FAILED = "failed", _("Rejected by nginx")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sites")
    domains = models.JSONField(help_text=_("Validated names, punycode; the first is the primary name."))
    primary_domain = models.CharField(max_length=253, db_index=True)
    root = models.CharField(max_length=4096, blank=True)
    proxy_pass = models.CharField(max_length=2048, blank=True)
    force_https = models.BooleanField(default=False)
    hsts = models.BooleanField(default=False)
    http2 = models.BooleanField(default=True)

    config_status = models.CharField(max_length=16, choices=ConfigStatus.choices, default=ConfigStatus.PENDING)
    config_error = models.TextField(blank=True)
    # The same as a message id and params (certs.problems), read in the reader's language;
    # NULL for a site applied since, or failed before it was kept.
    config_failure = models.JSONField(null=True, blank=True)
    config_applied_at = models.DateTimeField(null=True, blank=True)
    # When the pending apply was queued: a broker that lost the task (Redis restarted without
    # persistence) leaves the site pending, and panel.deployment.dispatch.resume_stalled_applies queues it again.
    config_queued_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["primary_domain", "id"]

    def __str__(self):
        return self.primary_domain

    def save(self, *args, **kwargs):
        self.primary_domain = self.domains[0] if self.domains else ""
        super().save(*args, **kwargs)

    @property
    def config_name(self):
        """File name of this site's vhost: stable, and never derived from user text."""
        return f"site-{self.pk}.conf"

    def serving_version(self):
        """The certificate version nginx should serve for this site, if any."""
        versions = list(
            CertificateVersion.objects.filter(certificate__site=self, certificate__current_version_id=models.F("id"))
            .select_related("certificate").order_by("-created_at")
        )
        # Prefer one that covers every name of the site: a certificate for some names
        # only would break HTTPS for the others.
        covering = [v for v in versions
                    if all(any(name_covers(c, d) for c in v.certificate.domains) for d in self.domains)]
        return (covering or versions or [None])[0]


class SiteDomain(models.Model):
    """Index of every name served by a site: a name belongs to one site only."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="domain_index")
    name = models.CharField(max_length=253, unique=True)


class PanelSettings(models.Model):
    """Installation-wide switches an administrator sets on the Settings page: a single row."""

    require_two_factor = models.BooleanField(
        _("require two-factor authentication for everyone"), default=False,
        help_text=_("Everyone without it, you included, is sent to set it up before anything else."),
    )
    # One owner per registrable domain (panel.hosting.sites): these are the exceptions.
    shared_names = models.TextField(
        _("shared registrable domains"), blank=True,
        help_text=_("One per line, e.g. example.com. Names under a registrable domain belong to the first user "
                    "who adds one, so nobody can take a customer's domain before the customer adds it; under "
                    "the domains listed here, every user may add names (e.g. your own domain that gives "
                    "customers subdomains)."),
    )
    # panel.toolkit.outbound reads it (hooked up in panel.apps); the Settings page normalises it.
    outbound_allow_list = models.TextField(
        _("outbound allow-list"), blank=True, default="",
        help_text=_("Internal addresses users' DNS providers, notification channels and site upstreams may "
                    "reach, one per line: an IP address or network, with an optional port, e.g. 10.0.0.5:8081, "
                    "192.168.1.0/24, [::1]:8053. Loopback, private, link-local and cloud metadata addresses "
                    "are refused for users unless listed here; administrators' own objects are not limited."),
    )

    # A code of certs.cas.PRESETS: the SSL tab registers users there in one click (certs.accounts).
    default_ca = models.CharField(
        _("default certificate authority"), max_length=64, default="letsencrypt",
        help_text=_("Users without an account there get a certificate in one click on a site's "
                    "SSL tab: the panel registers the account for them. CAs that need External "
                    "Account Binding are not offered: their accounts need keys from the CA's own "
                    "site."),
    )

    class Meta:
        verbose_name = _("panel settings")

    @classmethod
    def load(cls):
        # Reading never writes: the row appears when the Settings page first saves it.
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    def shared_name_set(self):
        return set(self.shared_names.split())


class UserQuota(models.Model):
    """Optional limits for one user, set by an admin; a blank limit (or no row) is no limit."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    max_sites = models.PositiveIntegerField(null=True, blank=True)
    max_certificates = models.PositiveIntegerField(null=True, blank=True)


class RootGrant(models.Model):
    """A directory an administrator granted one user beyond their home (panel.security.homes):
    their document roots and install paths may lie inside it. Below settings.ALLOWED_ROOTS or
    settings.INSTALL_ROOTS when granted on the user page; the upgrade to homes also granted
    the directories that users' existing sites and install targets already used."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="root_grants")
    path = models.CharField(max_length=4096)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "id"]

    def __str__(self):
        return self.path



# --- the audit log (panel.security.audit records it)

class Action(models.TextChoices):
    LOGIN = "login", _("Logged in")
    LOGIN_FAILED = "login-failed", _("Failed login")
    LOGOUT = "logout", _("Logged out")
    CREATE = "create", _("Created")
    CHANGE = "change", _("Changed")
    DELETE = "delete", _("Deleted")
    ISSUE = "issue", _("Certificate issued")
    REVOKE = "revoke", _("Revoked")
    KEY_DOWNLOAD = "key-download", _("Private key downloaded")
    API_WRITE = "api-write", _("Write through an API token")


class Via(models.TextChoices):
    UI = "ui", _("Browser session")
    API_TOKEN = "api-token", _("API token")
    SYSTEM = "system", _("System")


class ObjectType(models.TextChoices):
    USER = "user", _("User")
    SITE = "site", _("Site")
    CERTIFICATE = "certificate", _("Certificate")
    CERTIFICATE_VERSION = "certificate-version", _("Certificate version")
    DNS_CREDENTIAL = "dns-credential", _("DNS credentials")
    ACME_ACCOUNT = "acme-account", _("ACME account")
    NOTIFICATION_CHANNEL = "notification-channel", _("Notification channel")
    INSTALL_TARGET = "install-target", _("Install target")
    API_TOKEN = "api-token", _("API token")


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The user, kept even after they are deleted as actor_label (their name at the time).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=32, choices=ObjectType.choices, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=255, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    via = models.CharField(max_length=16, choices=Via.choices)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "panel"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label or '-'} {self.action} {self.object_type}"


# --- API tokens (panel.security.tokens issues and checks them)

class Scope(models.TextChoices):
    READ = "read", _("Read only")
    READ_WRITE = "read-write", _("Read and write")


class ApiToken(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)  # hex SHA-256 of the key
    prefix = models.CharField(max_length=16)  # the key's first characters, not enough to use it
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "panel"
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self):
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self):
        return self.revoked_at is None and not self.is_expired


# --- two-factor devices (panel.security.twofactor uses them): django-otp devices whose secrets
# are encrypted at rest like every other secret (manage.py rotate_keys re-encrypts them too).
# Migration 0008 moved the rows of django-otp's own TOTPDevice and StaticDevice here.

class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app: django-otp's TOTPDevice with its key encrypted. django-otp has no
    abstract TOTP model, so the fields are declared again; verification (with its replay and
    drift rules), throttling and the otpauth:// URL are TOTPDevice's own, unchanged."""

    key = EncryptedTextField(default=default_key, validators=[key_validator],
                             help_text="A hex-encoded secret key of up to 40 bytes.")
    step = models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")
    t0 = models.BigIntegerField(default=0, help_text="The Unix time at which to begin counting steps.")
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1, help_text="The time step of the last verified token.")

    class Meta(Device.Meta):
        app_label = "panel"
        verbose_name = "authenticator app"

    bin_key = TOTPDevice.bin_key
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A user's single-use recovery codes: django-otp's StaticDevice with each code encrypted."""

    class Meta(Device.Meta):
        app_label = "panel"
        verbose_name = "recovery codes"

    def get_throttle_factor(self):
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)

    def verify_token(self, token):
        """As StaticDevice: a matching code is used up; a wrong one slows the next try down.
        The codes are encrypted with a random IV, so each is decrypted and compared."""
        if not self.verify_is_allowed()[0]:
            return False
        match = next((code for code in self.codes.all() if constant_time_compare(code.code, token)), None)
        if match is None:
            self.throttle_increment()
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code = EncryptedTextField()

    class Meta:
        app_label = "panel"


class PanelHttps(models.Model):
    """The panel's own HTTPS (settings.PANEL_PORT): the domain it answers as and the certificate
    nginx serves it with, an ordinary certificate of the panel's pipeline that renews like any
    other (panel.hosting.panel_domain). A single row; until the certificate has a version nginx
    serves the panel with a self-signed one (panel.deployment.nginx.panel_vhost)."""

    domain = models.CharField(max_length=253, blank=True)
    # PROTECT: the certificate that serves the panel cannot be deleted from under it; clearing
    # the domain (the page, `manage.py panel_domain --clear`) lets it go.
    certificate = models.ForeignKey("certs.Certificate", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("the panel's HTTPS")

    @classmethod
    def load(cls):
        return cls.objects.select_related("certificate__current_version").filter(pk=1).first() or cls(pk=1)

    def serving_version(self):
        """The certificate version nginx serves the panel with, or None (self-signed): its
        certificate's current version, unless that was revoked."""
        version = self.certificate.current_version if self.certificate_id else None
        return version if version is not None and version.revoked_at is None else None
