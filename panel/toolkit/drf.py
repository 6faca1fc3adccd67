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


class OwnedOrSharedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A foreign key to the user's own row or one an administrator shares with everyone
    (access.scoped_or_shared); anything else reads as 'does not exist'. The row the object already
    points at stays acceptable, so an edit never fails over a choice made before the rules."""

    def get_queryset(self):
        queryset = access.scoped_or_shared(self.queryset.model, self.context["request"].user)
        instance = getattr(self.parent, "instance", None)
        current = getattr(instance, f"{self.source}_id", None) if instance is not None else None
        return queryset | self.queryset.model.objects.filter(pk=current) if current else queryset
