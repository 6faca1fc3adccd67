"""REST API for API tokens: /api/v1/tokens/. Thin: serializer -> panel.security.tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from panel.models import ApiToken
from panel.security import audit, tokens
from panel.toolkit.drf import StrictCharField


class ApiTokenSerializer(serializers.ModelSerializer):
    name = StrictCharField(max_length=ApiToken._meta.get_field("name").max_length)
    expires_in_days = serializers.IntegerField(write_only=True, required=False, allow_null=True, min_value=1,
                                               max_value=3650, help_text="Days until it expires; never when left out")
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "expires_in_days", "expires_at", "revoked_at", "last_used_at",
                  "created_at", "active"]
        read_only_fields = ["prefix", "expires_at", "revoked_at", "last_used_at", "created_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="The token itself: shown in this answer only")

    class Meta(ApiTokenSerializer.Meta):
        fields = ApiTokenSerializer.Meta.fields + ["key"]


class ApiTokenViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your API tokens. The key is in the answer to the POST that makes one, and nowhere else;
    DELETE revokes a token (it stays listed, revoked)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return tokens.own_tokens(self.request.user).order_by("id")

    @extend_schema(responses={201: NewApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, key = tokens.issue_token(request.user, data["name"], data.get("scope", tokens.Scope.READ_WRITE),
                                        data.get("expires_in_days"))
        token.key = key
        return Response(NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        if tokens.revoke_token(instance):
            audit.record(self.request, audit.Action.REVOKE, instance)
