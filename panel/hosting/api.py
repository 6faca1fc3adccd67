"""REST API for sites: /api/v1/sites/. Thin: access -> serializer -> panel.hosting.sites."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, viewsets

from panel.hosting import sites
from panel.models import Site
from panel.toolkit import access
from panel.toolkit.drf import as_drf_error


class SiteSerializer(serializers.ModelSerializer):
    domains = serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=False)
    root = serializers.CharField(required=False, allow_blank=True, default="",
                                 help_text="Document root of a static site. Left out with no proxy_pass on a new "
                                           "site: <your home>/<first domain>/, created with a start page.")
    proxy_pass = serializers.CharField(required=False, allow_blank=True, default="")
    confirm_system_root = serializers.BooleanField(
        write_only=True, required=False, default=False,
        help_text="Administrators: serve a root outside the users' homes and the web "
                  "directories (/opt, /usr…). System directories (/etc, /proc…) and the "
                  "panel's data are refused whatever this says.")

    class Meta:
        model = Site
        fields = ["id", "domains", "root", "proxy_pass", "confirm_system_root", "force_https",
                  "hsts", "http2", "config_status", "config_error", "config_applied_at",
                  "created_at"]
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
                actor=self.context["request"].user, owner=instance.owner if instance else None,
                confirm_system_root=attrs.pop("confirm_system_root", False),
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
