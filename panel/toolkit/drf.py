"""What every REST API module of the panel shares: Django's ValidationError as DRF's, a string
field that takes only strings, and a foreign key the requesting user must own."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from panel.toolkit import access


def as_drf_error(exc: DjangoValidationError):
    detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    return serializers.ValidationError(detail)


class StrictCharField(serializers.CharField):
    """A string, as the schema says: DRF's CharField would take 0 and store "0"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OwnedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A foreign key the requesting user must own; anything else reads as 'does not exist'."""

    def get_queryset(self):
        return access.scoped(self.queryset.model, self.context["request"].user)
