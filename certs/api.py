"""REST API for ACME accounts and certificates."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from certs import accounts, cas, certificates, dns_credentials, notifications, orders, upload
from certs.acme import AcmeError
from certs.dns import registry
from certs.models import (AcmeAccount, Certificate, Challenge, ChallengeType, DnsCredential, InstallTarget, KeyType,
                          NotificationChannel, NotificationEvent, Order, ReloadPreset)
from panel.deployment import dispatch, install_targets
from panel.models import Site
from panel.toolkit import access, validation
from panel.toolkit.deletion import InUse, delete_unless_in_use
from panel.toolkit.drf import OwnedPrimaryKeyField, as_drf_error
from panel.toolkit.snapshot import snapshot


class AcmeAccountSerializer(serializers.ModelSerializer):
    ca = serializers.ChoiceField(choices=sorted(cas.PRESETS), write_only=True, required=False,
                                 help_text="A preset CA; sets directory_url")
    # Blank (as a form sends an empty field) or left out: the `ca` preset gives it.
    directory_url = serializers.URLField(required=False, allow_blank=True, max_length=1024,
                                         help_text="A CA outside the presets: administrators only")
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
        if not cas.preset_for_url(attrs["directory_url"]) and not access.is_admin(self.context["request"].user):
            # The panel would fetch any URL given here: a request forgery risk, so admins only.
            raise serializers.ValidationError({"directory_url": [_("Only an administrator may use a CA outside the "
                                                                   "presets; choose one with ca.")]})
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


class DnsRecordSerializer(serializers.ModelSerializer):
    """A TXT record the order needs published (by the provider, or by hand in manual mode)."""

    name = serializers.CharField(source="record_name")
    value = serializers.CharField(source="record_value")
    expires_at = serializers.DateTimeField(source="authorization.expires_at")

    class Meta:
        model = Challenge
        fields = ["name", "value", "expires_at"]


class OrderSummarySerializer(serializers.ModelSerializer):
    log = serializers.SerializerMethodField()
    dns_records = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["id", "status", "error", "created_at", "finished_at", "dns_records", "log"]

    def get_log(self, order) -> list[str]:
        # English whatever the request's language: scripts match these lines.
        with translation.override("en"):
            return [f"{e.at:%H:%M:%S} {e.text}" for e in order.log_entries.all()]

    def get_dns_records(self, order) -> DnsRecordSerializer(many=True):
        records = Challenge.objects.filter(authorization__order=order, type="dns-01").exclude(record_value="")
        return DnsRecordSerializer(records.select_related("authorization"), many=True).data


class DnsCredentialSerializer(serializers.ModelSerializer):
    provider = serializers.ChoiceField(choices=[])
    credentials = serializers.DictField(child=serializers.CharField(allow_blank=True), write_only=True,
                                        help_text="The provider's declared fields (GET /api/v1/dns-providers/)")

    class Meta:
        model = DnsCredential
        fields = ["id", "provider", "name", "credentials", "propagation_timeout", "created_at"]
        read_only_fields = ["created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = list(registry.all_providers())

    def validate(self, attrs):
        try:
            attrs["credentials"] = dns_credentials.clean_values(attrs["provider"], attrs["credentials"])
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        return dns_credentials.save_credential(DnsCredential(owner=self.context["request"].user), **validated_data)


class DnsCredentialViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = DnsCredentialSerializer

    def get_queryset(self):
        return access.scoped(DnsCredential, self.request.user).defer("credentials").order_by("id")

    def perform_destroy(self, instance):
        try:
            delete_unless_in_use(instance, instance.certificates)
        except InUse:
            raise serializers.ValidationError({"detail": _("Certificates still use these credentials.")}) from None

    @extend_schema(request=None, responses={200: inline_serializer("CredentialTest", {
        "ok": serializers.BooleanField(), "message": serializers.CharField()})})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Prove the credentials work against the provider, without changing any record."""
        ok, message = dns_credentials.test_credential(self.get_object())
        return Response({"ok": ok, "message": message})


class DnsProviderViewSet(viewsets.ViewSet):
    """Every DNS provider: code, label and the credential fields it declares."""

    @extend_schema(responses={200: inline_serializer("DnsProvider", {
        "code": serializers.CharField(), "label": serializers.CharField(),
        "fields": serializers.ListField(child=serializers.DictField())}, many=True)})
    def list(self, request):
        return Response(registry.catalog())


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
            orders.start_order(cert)
        except IntegrityError:
            return Response({"detail": _("An order for this certificate is already running.")},
                            status=status.HTTP_409_CONFLICT)
        except orders.NotOrderable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
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


class NotificationChannelSerializer(serializers.ModelSerializer):
    url = serializers.CharField(write_only=True, max_length=2048, style={"input_type": "password"},
                                help_text="An apprise URL (json://, mailto://, tgram://, slack://, dingtalk://, "
                                          "wecom://, feishu://, ...) or django-mail://you@example.com; holds "
                                          "tokens, so it is never shown again")
    events = serializers.ListField(child=serializers.ChoiceField(choices=NotificationEvent.choices),
                                   allow_empty=False, required=False,
                                   help_text="What to send; every event when left out")

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "url", "events", "enabled", "created_at", "last_sent_at", "last_error"]
        read_only_fields = ["created_at", "last_sent_at", "last_error"]

    def validate_url(self, value):
        try:
            return notifications.clean_url(value, allow_internal=access.is_admin(self.context["request"].user))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)

    def validate_events(self, value):
        return [event for event in NotificationEvent.values if event in value]

    def create(self, validated_data):
        return NotificationChannel.objects.create(owner=self.context["request"].user, **validated_data)


class NotificationChannelViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                                 mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = NotificationChannelSerializer

    def get_queryset(self):
        return access.scoped(NotificationChannel, self.request.user).defer("url").order_by("id")

    @extend_schema(request=None, responses={200: inline_serializer("NotificationTest", {
        "ok": serializers.BooleanField(), "message": serializers.CharField()})})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a test message now, and say whether it went out."""
        ok, message = notifications.send_test(self.get_object())
        return Response({"ok": ok, "message": message})


@extend_schema_field(OpenApiTypes.STR)
class FileModeField(serializers.Field):
    """A file mode as octal text, "0600"; JSON numbers would read 0600 as 600."""

    def to_representation(self, value):
        return f"{value:04o}"

    def to_internal_value(self, data):
        try:
            return install_targets.parse_mode(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)


class ReloadPresetSerializer(serializers.ModelSerializer):
    command = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False,
                                    help_text="The program by its absolute path, then its arguments; no shell")

    class Meta:
        model = ReloadPreset
        fields = ["id", "name", "command", "timeout_seconds"]

    def validate(self, attrs):
        preset = ReloadPreset(**{**({} if self.instance is None else
                                    {f: getattr(self.instance, f) for f in ("name", "command", "timeout_seconds")}),
                                 **attrs})
        try:
            preset.clean()  # the one place with the rules for a preset
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs


class ReloadPresetViewSet(viewsets.ModelViewSet):
    """Commands an administrator allows to run after an install; users choose from them.
    Everyone reads; only administrators create, change or delete them."""

    serializer_class = ReloadPresetSerializer
    queryset = ReloadPreset.objects.order_by("name", "id")
    permission_classes = [IsAuthenticated, access.IsAdminOrReadOnly]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_destroy(self, instance):
        try:
            delete_unless_in_use(instance, instance.install_targets)
        except InUse:
            raise serializers.ValidationError({"detail": _("Install targets still use this preset.")}) from None


class InstallTargetSerializer(serializers.ModelSerializer):
    certificate = OwnedPrimaryKeyField(queryset=Certificate.objects.all())
    key_path = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096,
                                     trim_whitespace=False)
    cert_path = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096,
                                      trim_whitespace=False)
    chain_path = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096,
                                       trim_whitespace=False)
    fullchain_path = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096,
                                           trim_whitespace=False)
    key_mode = FileModeField(required=False, default=0o600)
    cert_mode = FileModeField(required=False, default=0o644)
    reload_preset = serializers.PrimaryKeyRelatedField(queryset=ReloadPreset.objects.all(), required=False,
                                                       allow_null=True, default=None)

    class Meta:
        model = InstallTarget
        fields = ["id", "certificate", "key_path", "cert_path", "chain_path", "fullchain_path", "key_mode",
                  "cert_mode", "reload_preset", "last_status", "last_error", "last_run_at", "created_at"]
        read_only_fields = ["last_status", "last_error", "last_run_at", "created_at"]

    def validate(self, attrs):
        target = self.instance or InstallTarget()
        paths = {field: attrs.get(field, getattr(target, field)) for field in InstallTarget.PATH_FIELDS}
        try:
            attrs.update(install_targets.clean_target(paths, attrs.get("key_mode", target.key_mode),
                                              attrs.get("cert_mode", target.cert_mode), exclude_pk=target.pk))
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs


class InstallTargetViewSet(viewsets.ModelViewSet):
    """Copy a certificate's files to approved paths after every issuance and renewal, then
    run a reload preset (acme.sh --install-cert). A new target installs at once."""

    serializer_class = InstallTargetSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return access.scoped(InstallTarget, self.request.user).select_related("certificate").order_by("id")

    def perform_create(self, serializer):
        target = serializer.save(owner=self.request.user)
        if target.certificate.current_version_id:
            dispatch.queue_install(target)

    @extend_schema(request=None, responses={202: InstallTargetSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Install the certificate's current version here now; the outcome shows in last_status."""
        target = self.get_object()
        if target.certificate.current_version_id is None:
            return Response({"detail": _("The certificate has not been issued yet.")},
                            status=status.HTTP_409_CONFLICT)
        dispatch.queue_install(target)
        return Response(self.get_serializer(target).data, status=status.HTTP_202_ACCEPTED)
