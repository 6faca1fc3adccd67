"""REST API for reload presets: /api/v1/reload-presets/. A user reads their own presets and the
shared ones; administrators read all and write."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from certs.models import ReloadPreset
from panel.toolkit import access
from panel.toolkit.deletion import InUse, delete_unless_in_use
from panel.toolkit.drf import as_drf_error


class ReloadPresetSerializer(serializers.ModelSerializer):
    command = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False,
                                    help_text="The program by its absolute path, then its arguments; no shell")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                         help_text="Who made it (an import's owner); null: an administrator")
    shared = serializers.BooleanField(required=False, default=False,
                                      help_text="Offered to every user (an administrator's preset only)")
    approved = serializers.BooleanField(required=False, default=True,
                                        help_text="Runs; false while a user's imported command waits for an "
                                                  "administrator")

    class Meta:
        model = ReloadPreset
        fields = ["id", "name", "command", "timeout_seconds", "owner", "shared", "approved"]

    def validate(self, attrs):
        fields = ("name", "command", "timeout_seconds", "owner", "shared", "approved")
        current = {} if self.instance is None else {f: getattr(self.instance, f) for f in fields}
        if self.instance is None:
            current["owner"] = self.context["request"].user
        preset = ReloadPreset(**{**current, **attrs})
        try:
            preset.clean()  # the one place with the rules for a preset
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs


class ReloadPresetViewSet(viewsets.ModelViewSet):
    """Commands an administrator allows to run after an install; users choose from their own
    (an import's) and the shared ones. Only administrators create, change, share, approve or
    delete them."""

    serializer_class = ReloadPresetSerializer
    permission_classes = [IsAuthenticated, access.IsAdminOrReadOnly]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return access.scoped_or_shared(ReloadPreset, self.request.user).select_related("owner").order_by("name", "id")

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    def perform_destroy(self, instance):
        try:
            delete_unless_in_use(instance, instance.install_targets)
        except InUse:
            raise serializers.ValidationError({"detail": _("Install targets still use this preset.")}) from None
