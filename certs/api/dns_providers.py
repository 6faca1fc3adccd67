"""REST API for the DNS provider catalogue: /api/v1/dns-providers/ (read-only)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from certs.dns import registry


class DnsProviderViewSet(viewsets.ViewSet):
    """Every DNS provider: code, label and the credential fields it declares. `admin_only`: only an
    administrator may use the provider; a field's `server_path`: a value of it naming a file or
    UNIX socket on this server is for administrators only."""

    @extend_schema(responses={200: inline_serializer("DnsProvider", {
        "code": serializers.CharField(), "label": serializers.CharField(), "admin_only": serializers.BooleanField(),
        "fields": serializers.ListField(child=serializers.DictField())}, many=True)})
    def list(self, request):
        return Response(registry.catalog())
