"""REST API for certificate versions: history, downloads, revocation.

    GET  /api/v1/certificates/{id}/versions/                       newest first, paginated
    GET  /api/v1/certificate-versions/{id}/download/?format=cert|fullchain
    POST /api/v1/certificate-versions/{id}/download/?format=pem-key|pfx|cert|fullchain
         the private key (pem-key, pfx) is only sent in answer to a POST, only to the
         certificate's owner; a PFX needs {"password": "..."} in the body, never in the URL
    POST /api/v1/certificate-versions/{id}/revoke/                  {"reason": "keyCompromise"}

A version of someone else's certificate answers 404, like one that does not exist.
"""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from certs import problems, versions
from certs.acme import AcmeError
from certs.models import Certificate, CertificateVersion
from panel.security import audit
from panel.toolkit import access


class CertificateVersionSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="Whether this is the version the certificate uses now")

    class Meta:
        model = CertificateVersion
        fields = ["id", "certificate", "serial", "issuer", "not_before", "not_after", "current", "revoked_at",
                  "revocation_reason", "created_at"]
        read_only_fields = fields

    def get_current(self, version) -> bool:
        return version.pk == version.certificate.current_version_id


class CertificateVersionList(generics.ListAPIView):
    """Every version issued for a certificate, newest first. Keys are never listed."""

    serializer_class = CertificateVersionSerializer

    def get_queryset(self):
        certificate = get_object_or_404(access.scoped(Certificate, self.request.user), pk=self.kwargs["pk"])
        return versions.history(certificate).select_related("certificate")


class _FileNegotiation(DefaultContentNegotiation):
    """Here `?format=` names the file to download, not one of DRF's renderers; errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_FORMAT_PARAMETER = OpenApiParameter(
    "format", str, OpenApiParameter.QUERY, enum=versions.ExportFormat.values, required=True,
    description="pem-key and pfx carry the private key: POST only",
)
_PUBLIC_FORMAT_PARAMETER = OpenApiParameter(
    "format", str, OpenApiParameter.QUERY, required=True,
    enum=[fmt for fmt in versions.ExportFormat.values if fmt not in versions.SECRET_FORMATS],
)
_ERROR = inline_serializer("VersionError", {"detail": serializers.CharField()})


class CertificateVersionDownload(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FileNegotiation

    @extend_schema(parameters=[_PUBLIC_FORMAT_PARAMETER],
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 400: _ERROR, 404: _ERROR,
                              405: _ERROR})
    def get(self, request, pk):
        """The certificate or the full chain as PEM."""
        return self._download(request, pk, request.method)

    @extend_schema(parameters=[_FORMAT_PARAMETER],
                   request=inline_serializer("VersionDownloadRequest", {
                       "password": serializers.CharField(required=False, style={"input_type": "password"},
                                                         help_text="Required for pfx; protects the key inside"),
                   }),
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 400: _ERROR, 404: _ERROR})
    def post(self, request, pk):
        """Any format; the private key (pem-key) and a password-protected PFX only this way."""
        return self._download(request, pk, request.method)

    def _download(self, request, pk, method):
        body = _body(request) if method == "POST" else {}
        fmt = request.query_params.get("format") or body.get("format")
        if fmt not in versions.ExportFormat.values:
            return _error(_("Give ?format= one of: %(formats)s.") % {"formats": ", ".join(versions.ExportFormat.values)})
        if "password" in request.query_params:
            return _error(_("Never put a password in a URL: send it in the POST body."))
        secret = fmt in versions.SECRET_FORMATS
        if secret and method != "POST":
            return Response({"detail": _("The private key is only sent in answer to a POST.")},
                            status=status.HTTP_405_METHOD_NOT_ALLOWED, headers={"Allow": "POST"})
        version = versions.get_version(request.user, pk, secret=secret)
        password = body.get("password", "")
        try:
            exported = versions.export(version, fmt, password=password if isinstance(password, str) else "")
        except versions.ExportRefused as exc:
            return _error(str(exc))
        if secret:
            audit.record(request, audit.Action.KEY_DOWNLOAD, version, format=fmt)
        return versions.as_attachment(exported)


class CertificateVersionRevoke(APIView):
    @extend_schema(
        request=inline_serializer("VersionRevokeRequest", {
            "reason": serializers.ChoiceField(choices=versions.RevocationReason.choices, required=False,
                                              default=versions.RevocationReason.UNSPECIFIED),
        }),
        responses={200: CertificateVersionSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR, 502: _ERROR},
    )
    def post(self, request, pk):
        """Revoke this version at the CA, with a reason; recorded with the time. Cannot be undone.
        If it was the certificate's current version, POST /api/v1/certificates/{id}/renew/ re-issues."""
        version = versions.get_version(request.user, pk)
        reason = _body(request).get("reason") or versions.RevocationReason.UNSPECIFIED
        if reason not in versions.RevocationReason.values:
            return _error(_("reason must be one of: %(reasons)s.")
                          % {"reasons": ", ".join(versions.RevocationReason.values)})
        try:
            versions.revoke(version, reason)
        except versions.RevocationRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except AcmeError as exc:
            code = status.HTTP_502_BAD_GATEWAY if exc.transient else status.HTTP_400_BAD_REQUEST
            failure = problems.from_acme(exc, version.certificate.account.directory_url)
            return Response({"detail": problems.join(_("The CA did not revoke it."), failure.text),
                             "ca_error": failure.ca_error}, status=code)
        audit.record_revocations(request, [version])
        return Response(CertificateVersionSerializer(version).data)


def _body(request):
    return request.data if hasattr(request.data, "get") else {}


def _error(message):
    return Response({"detail": message}, status=status.HTTP_400_BAD_REQUEST)
