"""REST API for sites: /api/v1/sites/. Thin: access -> serializer -> panel.hosting.sites."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from panel.hosting import sites
from panel.models import ApiToken, Site
from panel.security import audit, tokens
from panel.toolkit import access
from panel.toolkit.drf import StrictCharField, as_drf_error


class SiteSerializer(serializers.ModelSerializer):
    domains = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False)
    root = serializers.CharField(required=False, allow_blank=True, default="")
    proxy_pass = serializers.CharField(required=False, allow_blank=True, default="")

    class Meta:
        model = Site
        fields = ["id", "domains", "root", "proxy_pass", "force_https", "hsts", "http2",
                  "config_status", "config_error", "config_applied_at", "created_at"]
        read_only_fields = ["config_status", "config_error", "config_applied_at", "created_at"]

    def validate(self, attrs):
        instance = self.instance
        domains = attrs.get("domains", instance.domains if instance else None)
        root = attrs.get("root", instance.root if instance else "")
        proxy_pass = attrs.get("proxy_pass", instance.proxy_pass if instance else "")
        if instance and "root" in attrs and attrs["root"] and "proxy_pass" not in attrs:
            proxy_pass = ""  # switching a proxy site to static files
        if instance and "proxy_pass" in attrs and attrs["proxy_pass"] and "root" not in attrs:
            root = ""
        try:
            attrs["domains"], attrs["root"], attrs["proxy_pass"] = sites.clean_site_fields(
                domains, root, proxy_pass, exclude_pk=instance.pk if instance else None,
                actor=self.context["request"].user,
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc)
        return attrs

    def create(self, validated_data):
        return self._save(Site(owner=self.context["request"].user), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)

    def _save(self, site, data):
        for field, value in data.items():
            setattr(site, field, value)
        try:
            return sites.save_site(site)
        except DjangoValidationError as exc:
            raise as_drf_error(exc)


class SiteViewSet(viewsets.ModelViewSet):
    serializer_class = SiteSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return access.scoped(Site, self.request.user).order_by("id")

    def perform_destroy(self, instance):
        sites.delete_site(instance)


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
