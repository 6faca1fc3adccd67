from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from panel.validation import name_covers


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
    config_applied_at = models.DateTimeField(null=True, blank=True)
    # When the pending apply was queued: a broker that lost the task (Redis restarted without
    # persistence) leaves the site pending, and sites.resume_stalled_applies queues it again.
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
        from certs.models import CertificateVersion

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

    class Meta:
        verbose_name = _("panel settings")

    @classmethod
    def load(cls):
        # Reading never writes: the row appears when the Settings page first saves it.
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class UserQuota(models.Model):
    """Optional limits for one user, set by an admin; a blank limit (or no row) is no limit."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    max_sites = models.PositiveIntegerField(null=True, blank=True)
    max_certificates = models.PositiveIntegerField(null=True, blank=True)


# Defined next to the code that uses them; imported here so Django registers them.
from panel.audit import AuditEntry  # noqa: E402,F401
from panel.tokens import ApiToken  # noqa: E402,F401
