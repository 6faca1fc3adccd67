"""Deleting a row that others may still point at (on_delete=PROTECT): one rule for the pages
and the API, so both refuse the same way, including when the row comes into use meanwhile."""

from django.db.models import ProtectedError


class InUse(Exception):
    """The row was not deleted: `count` rows still use it."""

    def __init__(self, count):
        super().__init__(count)
        self.count = count


def delete_unless_in_use(row, users):
    """Deletes `row` unless `users` (the rows that point at it: a queryset or related manager)
    has any; raises InUse otherwise. One that starts pointing at it between the count and the
    delete makes Django refuse with ProtectedError: the same InUse, counted again."""
    count = users.count()
    if count:
        raise InUse(count)
    try:
        row.delete()
    except ProtectedError:
        raise InUse(users.count() or 1) from None
