"""REST API for install targets: /api/v1/install-targets/. Paths are checked by
panel.deployment.install_targets; installs are queued through panel.deployment.dispatch."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from certs import problems
from certs.models import Certificate, InstallTarget, ReloadPreset
from panel.deployment import dispatch, install_targets
from panel.security import homes
from panel.toolkit import access
from panel.toolkit.drf import OwnedOrSharedPrimaryKeyField, OwnedPrimaryKeyField, as_drf_error


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
    # The user's own presets and the ones an administrator shares, nobody else's.
    reload_preset = OwnedOrSharedPrimaryKeyField(queryset=ReloadPreset.objects.all(), required=False,
                                                 allow_null=True, default=None)
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = InstallTarget
        fields = ["id", "certificate", "key_path", "cert_path", "chain_path", "fullchain_path", "key_mode",
                  "cert_mode", "reload_preset", "last_status", "last_error", "last_run_at", "created_at"]
        read_only_fields = ["last_status", "last_error", "last_run_at", "created_at"]

    def get_last_error(self, target) -> str:
        """In the request's language, the system's own words after a line break."""
        shown = problems.stored(target.last_failure, target.last_error)
        return "\n".join(filter(None, [shown.text, shown.raw])) if shown else ""

    def validate(self, attrs):
        target = self.instance or InstallTarget()
        paths = {field: attrs.get(field, getattr(target, field)) for field in InstallTarget.PATH_FIELDS}
        try:
            owner = target.owner if target.pk else self.context["request"].user
            attrs.update(install_targets.clean_target(paths, attrs.get("key_mode", target.key_mode),
                                                      attrs.get("cert_mode", target.cert_mode),
                                                      homes.install_roots_of(owner), exclude_pk=target.pk))
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
