"""REST API for DNS credentials: /api/v1/dns-credentials/. Values are write-only;
certs.dns_credentials checks and stores them. An update keeps the provider; in its
`credentials`, a secret field left out or empty keeps the stored secret."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from certs import dns_credentials
from certs.dns import registry
from certs.models import DnsCredential
from panel.toolkit import access
from panel.toolkit.deletion import InUse, delete_unless_in_use
from panel.toolkit.drf import as_drf_error


class DnsCredentialSerializer(serializers.ModelSerializer):
    provider = serializers.ChoiceField(choices=[])
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True), write_only=True,
        help_text="The provider's declared fields (GET /api/v1/dns-providers/). On update (PUT, PATCH): the "
                  "fields to change; a field left out keeps its stored value, a secret field given empty "
                  "keeps its stored secret and given null removes it, any other field given empty is "
                  "cleared.")

    class Meta:
        model = DnsCredential
        fields = ["id", "provider", "name", "credentials", "propagation_timeout", "created_at"]
        read_only_fields = ["created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = list(registry.all_providers())

    def validate(self, attrs):
        credential = self.instance
        if credential is not None and attrs.get("provider", credential.provider) != credential.provider:
            raise serializers.ValidationError({"provider": [_("The provider cannot be changed: add new credentials "
                                                              "for another one.")]})
        try:
            if credential is None:
                attrs["credentials"] = dns_credentials.clean_values(attrs["provider"], attrs["credentials"],
                                                                    owner=self.context["request"].user)
            else:
                attrs["credentials"] = dns_credentials.clean_changes(credential, attrs.get("credentials", {}))
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        return dns_credentials.save_credential(DnsCredential(owner=self.context["request"].user), **validated_data)

    def update(self, instance, validated_data):
        return dns_credentials.update_credential(
            instance, validated_data.get("name", instance.name), validated_data["credentials"],
            validated_data.get("propagation_timeout", instance.propagation_timeout))


class DnsCredentialViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
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
