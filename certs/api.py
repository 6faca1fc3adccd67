"""REST API for ACME accounts and certificates."""

from django.db import IntegrityError
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from certs import accounts, cas, certificates, orders
from certs.acme import AcmeError
from certs.models import AcmeAccount, Certificate, ChallengeType, KeyType, Order
from panel import access, validation
from panel.api import as_drf_error
from panel.models import Site


class OwnedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A foreign key the requesting user must own; anything else reads as 'does not exist'."""

    def get_queryset(self):
        return access.scoped(self.queryset.model, self.context["request"].user)


class AcmeAccountSerializer(serializers.ModelSerializer):
    ca = serializers.ChoiceField(choices=sorted(cas.PRESETS), write_only=True, required=False,
                                 help_text="A preset CA; sets directory_url")
    directory_url = serializers.URLField(required=False, max_length=1024)
    eab_hmac_key = serializers.CharField(write_only=True, required=False, allow_blank=True, default="",
                                         style={"input_type": "password"})

    class Meta:
        model = AcmeAccount
        fields = ["id", "ca", "directory_url", "email", "eab_kid", "eab_hmac_key", "account_url", "status",
                  "created_at"]
        read_only_fields = ["account_url", "status", "created_at"]

    def validate_eab_hmac_key(self, value):
        try:
            return validation.validate_eab_hmac_key(value) if value else value
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)

    def validate(self, attrs):
        preset = cas.PRESETS.get(attrs.pop("ca", None) or "")
        if preset:
            attrs["directory_url"] = preset.directory_url
        if not attrs.get("directory_url"):
            raise serializers.ValidationError({"directory_url": [_("Give a directory URL or choose a CA preset (ca).")]})
        if bool(attrs.get("eab_kid")) != bool(attrs.get("eab_hmac_key")):
            raise serializers.ValidationError({"eab_hmac_key": [_("External Account Binding needs both the key id "
                                                                  "and the HMAC key.")]})
        return attrs

    def create(self, validated_data):
        try:
            return accounts.register_account(self.context["request"].user, **validated_data)
        except AcmeError as exc:
            raise serializers.ValidationError({"directory_url": [_("The CA refused the registration: %(error)s")
                                                                 % {"error": exc}]})


class AcmeAccountViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):
    serializer_class = AcmeAccountSerializer

    def get_queryset(self):
        return access.scoped(AcmeAccount, self.request.user).order_by("id")


class OrderSummarySerializer(serializers.ModelSerializer):
    log = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["id", "status", "error", "created_at", "finished_at", "log"]

    def get_log(self, order) -> list[str]:
        return [f"{e.at:%H:%M:%S} {e.message}" for e in order.log_entries.all()]


class CertificateSerializer(serializers.ModelSerializer):
    domains = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False)
    acme_account = OwnedPrimaryKeyField(source="account", queryset=AcmeAccount.objects.all())
    site = OwnedPrimaryKeyField(queryset=Site.objects.all(), required=False, allow_null=True)
    key_type = serializers.ChoiceField(choices=KeyType.choices, default=KeyType.EC256)
    challenge = serializers.ChoiceField(choices=ChallengeType.choices, default=ChallengeType.HTTP01)
    not_before = serializers.DateTimeField(source="current_version.not_before", read_only=True, default=None)
    not_after = serializers.DateTimeField(source="current_version.not_after", read_only=True, default=None)
    serial = serializers.CharField(source="current_version.serial", read_only=True, default=None)
    issuer = serializers.CharField(source="current_version.issuer", read_only=True, default=None)
    order = serializers.SerializerMethodField()

    class Meta:
        model = Certificate
        fields = ["id", "domains", "acme_account", "key_type", "challenge", "site", "status", "not_before",
                  "not_after", "serial", "issuer", "next_renewal_at", "last_error", "order", "created_at"]
        read_only_fields = ["status", "next_renewal_at", "last_error", "created_at"]

    def get_order(self, cert) -> OrderSummarySerializer:
        order = cert.latest_order()
        return OrderSummarySerializer(order).data if order else None

    def validate(self, attrs):
        try:
            attrs["domains"] = certificates.clean_request(self.context["request"].user, attrs["domains"],
                                                          attrs["challenge"], attrs.get("site"))
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        return certificates.request_certificate(self.context["request"].user, **validated_data)


class CertificateViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):
    serializer_class = CertificateSerializer

    def get_queryset(self):
        return access.scoped(Certificate, self.request.user).with_current_version().order_by("id")

    @extend_schema(request=None, responses={202: CertificateSerializer})
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        cert = self.get_object()
        try:
            orders.start_order(cert)
        except IntegrityError:
            return Response({"detail": _("An order for this certificate is already running.")},
                            status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(cert).data, status=status.HTTP_202_ACCEPTED)
