"""REST API for sites: /api/v1/sites/. Thin: access -> serializer -> panel.hosting.sites."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from certs import problems
from certs.site_removal import CertificatesChoice, RevocationFailed, not_revoked_text
from panel.hosting import sites
from panel.models import Site
from panel.security import audit
from panel.toolkit import access
from panel.toolkit.drf import as_drf_error

_CERTIFICATES_PARAMETER = OpenApiParameter(
    "certificates", str, OpenApiParameter.QUERY,
    enum=CertificatesChoice.values, default=CertificatesChoice.KEEP,
    description="What becomes of the site's certificates that no other site of its owner uses: "
                "keep (renewed as before), stop (no longer renewed; valid until they expire) or "
                "revoke (revoked at the CA, reason cessationOfOperation, and no longer renewed). "
                "Certificates covering a name of another of the owner's sites, and those "
                "another user owns, are always kept. Default: keep.",
)
_CA_ERROR = inline_serializer(
    "SiteDeleteCaError", {"code": serializers.CharField(), "raw": serializers.CharField()},
    required=False, help_text="When the CA did not revoke a certificate: why, for scripts")
_ERROR = inline_serializer("SiteDeleteError",
                           {"detail": serializers.CharField(), "ca_error": _CA_ERROR})


class SiteSerializer(serializers.ModelSerializer):
    domains = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False)
    root = serializers.CharField(required=False, allow_blank=True, default="",
                                 help_text="Document root of a static site. Left out with no proxy_pass on a new "
                                           "site: <your home>/<first domain>/, created with a start page.")
    proxy_pass = serializers.CharField(required=False, allow_blank=True, default="")
    confirm_system_root = serializers.BooleanField(
        write_only=True, required=False, default=False,
        help_text="Administrators: serve a root outside the users' homes and the web "
                  "directories (/opt, /usr…). System directories (/etc, /proc…) and the "
                  "panel's data are refused whatever this says.")

    class Meta:
        model = Site
        fields = ["id", "domains", "root", "proxy_pass", "confirm_system_root", "force_https",
                  "hsts", "http2", "config_status", "config_error", "config_applied_at",
                  "created_at"]
        read_only_fields = ["config_status", "config_error", "config_applied_at", "created_at"]

    def validate(self, attrs):
        instance = self.instance
        domains = attrs.get("domains", instance.domains if instance else None)
        root = attrs.get("root", instance.root if instance else "")
        proxy_pass = attrs.get("proxy_pass", instance.proxy_pass if instance else "")
        if instance and "root" in attrs and attrs["root"] and "proxy_pass" not in attrs:
            proxy_pass = ""  # switching a proxy site to static files
        if instance and "proxy_pass" in attrs and attrs["proxy_pass"] and "root" not in attrs:
            root = ""
        try:
            attrs["domains"], attrs["root"], attrs["proxy_pass"] = sites.clean_site_fields(
                domains, root, proxy_pass, exclude_pk=instance.pk if instance else None,
                actor=self.context["request"].user, owner=instance.owner if instance else None,
                confirm_system_root=attrs.pop("confirm_system_root", False),
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        return self._save(Site(owner=self.context["request"].user), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)

    def _save(self, site, data):
        for field, value in data.items():
            setattr(site, field, value)
        try:
            return sites.save_site(site)
        except DjangoValidationError as exc:
            raise as_drf_error(exc)


class SiteViewSet(viewsets.ModelViewSet):
    serializer_class = SiteSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return access.scoped(Site, self.request.user).order_by("id")

    @extend_schema(parameters=[_CERTIFICATES_PARAMETER],
                   responses={204: None, 400: _ERROR, 502: _ERROR})
    def destroy(self, request, *args, **kwargs):
        """Delete the site and remove its nginx config; `certificates` says what becomes of its
        certificates. The CA is asked once the site is deleted: if it does not revoke one,
        the site stays deleted and the answer (400 or 502) says which certificates are left
        valid, no longer renewed nor served."""
        site = self.get_object()
        choice = request.query_params.get("certificates", CertificatesChoice.KEEP)
        if choice not in CertificatesChoice.values:
            message = _("certificates must be one of: %(choices)s.") % {
                "choices": ", ".join(CertificatesChoice.values)}
            raise serializers.ValidationError({"certificates": [message]})
        try:
            revoked = sites.delete_site(site, choice)
        except RevocationFailed as exc:  # the site is deleted all the same
            audit.record_revocations(request, exc.revoked)
            code = status.HTTP_502_BAD_GATEWAY if exc.transient else status.HTTP_400_BAD_REQUEST
            detail = problems.join(exc.lead(), exc.failure.text, not_revoked_text(exc))
            return Response({"detail": detail, "ca_error": exc.failure.ca_error}, status=code)
        audit.record_revocations(request, revoked)
        return Response(status=status.HTTP_204_NO_CONTENT)
