"""REST API for ACME accounts: /api/v1/acme-accounts/. Registration goes through certs.accounts."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework import mixins, serializers, viewsets

from certs import accounts, cas, problems
from certs.acme import AcmeError
from certs.models import AcmeAccount
from panel.toolkit import access, validation


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
            # The words for a person, and for a script the cause's code and the CA's own text.
            failure = problems.from_acme(exc, validated_data["directory_url"])
            told = problems.join(_("The account was not registered."), failure.text)
            raise serializers.ValidationError({
                "directory_url": [told],
                "ca_error": failure.ca_error,
            })


class AcmeAccountViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):
    serializer_class = AcmeAccountSerializer

    def get_queryset(self):
        return access.scoped(AcmeAccount, self.request.user).order_by("id")
