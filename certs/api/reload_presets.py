"""REST API for reload presets: /api/v1/reload-presets/. Everyone reads; administrators write."""

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
