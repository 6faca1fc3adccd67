"""Sortable list pages: ?sort=key (ascending) or ?sort=-key (descending) picks a column.

A view declares its columns once; `ListSorting` reads the request, orders the queryset (with
the primary key as the last tie-breaker, so pages never overlap or skip rows) and gives the
template what each column header needs: the link that sorts by it and its aria-sort state.
An unknown ?sort= falls back to the default, as if none was given.
"""

from dataclasses import dataclass

from django.db.models import F


@dataclass(frozen=True)
class SortableColumn:
    key: str  # in the URL
    label: str  # the header's text (lazy translation)
    ordering: tuple  # expressions (or field names) ordering ascending; NULLs always go last


@dataclass(frozen=True)
class ColumnHeader:
    label: str
    sort_value: str  # ?sort= of the link: this column, the other way round if it is the current one
    aria_sort: str  # "ascending", "descending", or "" when the list is not sorted by this column


class ListSorting:
    def __init__(self, columns, requested, default):
        self.columns = {column.key: column for column in columns}
        key = (requested or "").removeprefix("-")
        if key not in self.columns:
            requested, key = default, default.removeprefix("-")
        self.key, self.descending = key, requested.startswith("-")
        self.value = requested  # what the search form carries along

    def order(self, queryset):
        expressions = [F(e) if isinstance(e, str) else e for e in self.columns[self.key].ordering]
        expressions.append(F("pk"))
        if self.descending:
            return queryset.order_by(*(e.desc(nulls_last=True) for e in expressions))
        return queryset.order_by(*(e.asc(nulls_last=True) for e in expressions))

    @property
    def headers(self):
        """{column key: ColumnHeader}, for includes/sort_header.html."""
        headers = {}
        for key, column in self.columns.items():
            current = key == self.key
            headers[key] = ColumnHeader(
                label=column.label,
                sort_value=f"-{key}" if current and not self.descending else key,
                aria_sort=("descending" if self.descending else "ascending") if current else "",
            )
        return headers
