"""REST API for notification channels: /api/v1/notification-channels/. The URL holds tokens:
it is write-only."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from certs import notifications
from certs.models import NotificationChannel, NotificationEvent
from panel.toolkit import access


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
