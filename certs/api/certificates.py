"""REST API for certificates: /api/v1/certificates/ (request, upload, renew, continue a manual
DNS-01 order). Thin: access -> serializer -> certs.certificates, certs.upload, certs.orders."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from certs import certificates, orders, upload
from certs.challenges import dns01
from certs.models import AcmeAccount, Certificate, Challenge, ChallengeType, DnsCredential, KeyType, Order
from panel.models import Site
from panel.toolkit import access
from panel.toolkit.drf import OwnedPrimaryKeyField, as_drf_error
from panel.toolkit.snapshot import snapshot


class DnsRecordSerializer(serializers.ModelSerializer):
    """A TXT record the order needs published (by the provider, or by hand in manual mode)."""

    name = serializers.CharField(source="record_name")
    host = serializers.SerializerMethodField(
        help_text="The name relative to its zone (the registrable domain), as some DNS consoles "
                  "ask for it.")
    value = serializers.CharField(source="record_value")
    expires_at = serializers.DateTimeField(source="authorization.expires_at")

    class Meta:
        model = Challenge
        fields = ["name", "host", "value", "expires_at"]

    def get_host(self, challenge) -> str:
        return dns01.host_record(challenge.record_name)


class OrderSummarySerializer(serializers.ModelSerializer):
    log = serializers.SerializerMethodField()
    dns_records = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["id", "status", "error", "created_at", "finished_at", "dns_records", "log"]

    def get_log(self, order) -> list[str]:
        # English whatever the request's language: scripts match these lines.
        with translation.override("en"):
            return [f"{e.at:%H:%M:%S} {e.text}" + (f" ({e.raw})" if e.raw else "")
                    for e in order.log_entries.all()]

    def get_dns_records(self, order) -> DnsRecordSerializer(many=True):
        records = Challenge.objects.filter(authorization__order=order, type="dns-01").exclude(record_value="")
        return DnsRecordSerializer(records.select_related("authorization"), many=True).data


class CertificateSerializer(serializers.ModelSerializer):
    domains = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False)
    # Null for an uploaded certificate; a request must name one.
    acme_account = OwnedPrimaryKeyField(source="account", queryset=AcmeAccount.objects.all(), allow_null=True)
    site = OwnedPrimaryKeyField(queryset=Site.objects.all(), required=False, allow_null=True)
    key_type = serializers.ChoiceField(choices=KeyType.choices, default=KeyType.EC256)
    challenge = serializers.ChoiceField(choices=ChallengeType.choices, default=ChallengeType.HTTP01)
    dns_credential = OwnedPrimaryKeyField(queryset=DnsCredential.objects.all(), required=False, allow_null=True)
    challenge_alias = serializers.CharField(required=False, allow_blank=True, default="", max_length=253)
    # Servers the panel does not manage (admins only): http-01-webroot's document root,
    # http-01-nginx / -apache's config file.
    webroot = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096)
    server_config = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096)
    not_before = serializers.DateTimeField(source="current_version.not_before", read_only=True, default=None)
    not_after = serializers.DateTimeField(source="current_version.not_after", read_only=True, default=None)
    serial = serializers.CharField(source="current_version.serial", read_only=True, default=None)
    issuer = serializers.CharField(source="current_version.issuer", read_only=True, default=None)
    order = serializers.SerializerMethodField()

    class Meta:
        model = Certificate
        fields = ["id", "domains", "source", "acme_account", "key_type", "challenge", "dns_credential",
                  "challenge_alias", "webroot", "server_config", "site", "status", "not_before",
                  "not_after", "serial", "issuer", "next_renewal_at", "renewal_failures", "last_error", "order",
                  "created_at"]
        read_only_fields = ["source", "status", "next_renewal_at", "renewal_failures", "last_error", "created_at"]

    def get_order(self, cert) -> OrderSummarySerializer:
        order = cert.latest_order()
        return OrderSummarySerializer(order).data if order else None

    def validate(self, attrs):
        if attrs["account"] is None:
            raise serializers.ValidationError({"acme_account": [_("Choose the ACME account to order with.")]})
        try:
            attrs.update(certificates.clean_request(
                self.context["request"].user, attrs["domains"], attrs["challenge"], attrs.get("site"),
                attrs.get("dns_credential"), attrs.get("challenge_alias", ""), attrs.get("webroot", ""),
                attrs.get("server_config", ""),
            ))
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        try:
            return certificates.request_certificate(self.context["request"].user, **validated_data)
        except DjangoValidationError as exc:  # the certificate quota is used up
            raise as_drf_error(exc)


class CertificateUploadSerializer(serializers.Serializer):
    """A certificate issued elsewhere. The key is write-only: no response ever carries it."""

    certificate = serializers.CharField(max_length=upload.MAX_CERTIFICATE_CHARS, trim_whitespace=False,
                                        help_text="PEM: the certificate, optionally followed by its chain")
    chain = serializers.CharField(max_length=upload.MAX_CERTIFICATE_CHARS, trim_whitespace=False, required=False,
                                  allow_blank=True, default="",
                                  help_text="PEM: the intermediates, each followed by its issuer")
    private_key = serializers.CharField(max_length=upload.MAX_KEY_CHARS, trim_whitespace=False, write_only=True,
                                        style={"input_type": "password"},
                                        help_text="PEM, RSA or EC, not password-protected")
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.none(), required=False, allow_null=True,
                                              default=None,
                                              help_text="One of your own sites; it serves the certificate at once")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "request" in self.context:
            self.fields["site"].queryset = upload.attachable_sites(self.context["request"].user)

    def validate(self, attrs):
        try:
            attrs["upload"] = upload.check_upload(self.context["request"].user, attrs["certificate"], attrs["chain"],
                                                  attrs["private_key"], attrs["site"])
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        try:
            return upload.store_upload(self.context["request"].user, validated_data["upload"],
                                       validated_data["site"])
        except DjangoValidationError as exc:  # the certificate quota is used up
            raise as_drf_error(exc)


class CertificateViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):
    serializer_class = CertificateSerializer

    def get_queryset(self):
        return access.scoped(Certificate, self.request.user).with_current_version().order_by("id")

    # A certificate and its latest order are read in separate statements: one snapshot keeps a
    # failure the worker commits meanwhile from showing as an invalid order without its error.
    def list(self, request, *args, **kwargs):
        with snapshot():
            return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        with snapshot():
            return super().retrieve(request, *args, **kwargs)

    @extend_schema(request=CertificateUploadSerializer, responses={201: CertificateSerializer})
    @action(detail=False, methods=["post"], url_path="upload", serializer_class=CertificateUploadSerializer)
    def upload_certificate(self, request):
        """Store a certificate issued elsewhere, with its key and chain, checked first; with `site`,
        that site serves it. The panel cannot renew it."""
        serializer = CertificateUploadSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        certificate = serializer.save()
        cert = self.get_queryset().get(pk=certificate.pk)
        return Response(CertificateSerializer(cert, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: CertificateSerializer})
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        cert = self.get_object()
        try:
            # As the page's "Renew now": a renewal once there is a version to renew.
            renewal = cert.current_version_id is not None
            orders.start_order(cert, is_renewal=renewal, asked_by_user=True)
        except IntegrityError:
            return Response({"detail": _("An order for this certificate is already running.")},
                            status=status.HTTP_409_CONFLICT)
        except orders.NotOrderable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except orders.NamesNotOwned as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(self.get_serializer(cert).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: CertificateSerializer})
    @action(detail=True, methods=["post"], url_path="continue")
    def continue_order(self, request, pk=None):
        """Manual DNS-01: the TXT records are in place; stop waiting for them to show."""
        cert = self.get_object()
        order = cert.active_order()
        if order is None or not orders.continue_order(order):
            return Response({"detail": _("No order of this certificate is waiting for DNS records.")},
                            status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(cert).data, status=status.HTTP_202_ACCEPTED)
