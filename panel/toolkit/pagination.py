"""API list pages: LimitOffset, strict about its input. A module of its own: DRF imports it
from settings while rest_framework.viewsets is still loading."""

from django.utils.translation import gettext as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class StrictLimitOffsetPagination(pagination.LimitOffsetPagination):
    """limit and offset as the schema says: whole numbers, limit from 1; anything else is a 400,
    not silently the first page (DRF's default would serve ?offset=abc as offset 0)."""

    def get_limit(self, request):
        return self._whole_number(request, self.limit_query_param, minimum=1, default=self.default_limit,
                                  cutoff=self.max_limit)

    def get_offset(self, request):
        return self._whole_number(request, self.offset_query_param, minimum=0, default=0)

    def _whole_number(self, request, name, minimum, default, cutoff=None):
        values = request.query_params.getlist(name)
        if not values:
            return default
        if len(values) > 1 or not values[0].isdigit() or int(values[0]) < minimum:
            raise ValidationError({name: [_("Give one whole number, at least %(minimum)d.")
                                                      % {"minimum": minimum}]})
        return min(int(values[0]), cutoff) if cutoff else int(values[0])

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1 if parameter["name"] == self.limit_query_param else 0
        return parameters
