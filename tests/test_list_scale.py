"""The list pages with 10 rows and with 10,000: the same handful of SQL queries, and the page a
user expects (50 rows, in the order of the clicked column, the search hit).

Two users share one database, filled once for the module: `few` owns 10 sites, certificates,
ACME accounts and DNS credentials, `many` owns 10,000 of each. Every page is fetched as both
and must run the same number of queries, at most QUERY_LIMIT.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.support.list_scale import fill

MANY = 10_000
FEW = 10
PER_PAGE = 50
QUERY_LIMIT = 8  # session, user, the 2FA checks (a device? required?), one COUNT, the rows, their certificates
@pytest.fixture(scope="module")
def data(django_db_setup, django_db_blocker):
    """Made once; everything is rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        users = {label: get_user_model().objects.create_user(label) for label in ("few", "many")}
        now = timezone.now()
        rows = {"few": fill(users["few"], "few", FEW, now), "many": fill(users["many"], "many", MANY, now)}
        yield {"users": users, "rows": rows}
        transaction.set_rollback(True)


@pytest.fixture
def clients(db, data):
    clients = {}
    for label, user in data["users"].items():
        clients[label] = Client()
        clients[label].force_login(user)
    return clients


def expiry_key(row):
    return (row.not_after is None, row.not_after, row.pk)


ORDERINGS = {  # ?sort= -> how the test predicts the order of its own rows
    "domain": lambda row: row.name,
    "name": lambda row: row.name,
    "config": lambda row: (row.rank, row.pk),
    "status": lambda row: (row.rank, *expiry_key(row)),
    "expires": expiry_key,
    "created": lambda row: row.position,
}


def expected_first_page(rows, sort):
    """Descending only for columns without NULLs: reversing the key is then the same order."""
    ordered = sorted(rows, key=ORDERINGS[sort.removeprefix("-")], reverse=sort.startswith("-"))
    return [row.pk for row in ordered[:PER_PAGE]]


def fetch(client, url, params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return response, len(queries)


def fetch_as_both(clients, url, params):
    """The page for `few` and for `many`, after one warm-up request each (first-use caches)."""
    for client in clients.values():
        client.get(url, params)
    (few, few_queries), (many, many_queries) = (fetch(clients[label], url, params) for label in ("few", "many"))
    assert few_queries == many_queries, f"{url} {params}: {few_queries} queries for {FEW} rows, " \
                                        f"{many_queries} for {MANY}"
    assert many_queries <= QUERY_LIMIT
    return few, many


def shown(response):
    return [row.pk for row in response.context["page"]]


# --- sites


@pytest.mark.parametrize("sort", ["domain", "-domain", "config", "expires", "created"])
def test_site_list_sorts_10000_sites_with_the_same_queries_as_10(clients, data, sort):
    few, many = fetch_as_both(clients, reverse("ui:site-list"), {"sort": sort})
    assert shown(many) == expected_first_page(data["rows"]["many"]["sites"], sort)
    assert shown(few) == expected_first_page(data["rows"]["few"]["sites"], sort)
    assert len(shown(many)) == PER_PAGE
    html = many.content.decode()
    column = sort.removeprefix("-")
    assert f'aria-sort="{"descending" if sort.startswith("-") else "ascending"}"' in html
    assert html.count("aria-sort=") == 1
    # The header of the current column links to the other direction; the search keeps the sort.
    assert f'href="?sort={column if sort.startswith("-") else "-" + column}"' in html
    assert f'name="sort" value="{sort}"' in html


def test_site_list_later_page_of_10000(clients, data):
    few, many = fetch_as_both(clients, reverse("ui:site-list"), {"page": 100})
    by_name = sorted(data["rows"]["many"]["sites"], key=lambda row: row.name)
    assert shown(many) == [row.pk for row in by_name[99 * PER_PAGE:100 * PER_PAGE]]
    assert "Page 100 of 200" in many.content.decode()
    assert len(shown(few)) == FEW  # past the end: the last page


def test_site_list_search_finds_the_one_site_among_10000(clients, data):
    few, many = fetch_as_both(clients, reverse("ui:site-list"), {"q": "site00003", "sort": "expires"})
    for response, label in ((few, "few"), (many, "many")):
        wanted = next(row for row in data["rows"][label]["sites"] if row.name == f"site00003.{label}.test")
        # Both of its names contain the term: still one row.
        assert shown(response) == [wanted.pk]
        assert f"www.site00003.{label}.test" in response.content.decode()
    nothing, _queries = fetch(clients["many"], reverse("ui:site-list"), {"q": "site0000x"})
    assert "No site has a name containing “site0000x”" in nothing.content.decode()


def test_site_list_shows_each_sites_certificate_from_one_query(clients, data):
    many, _queries = fetch(clients["many"], reverse("ui:site-list"), {"sort": "expires"})
    first = many.context["page"][0]
    soonest = min((row for row in data["rows"]["many"]["sites"] if row.not_after), key=expiry_key)
    assert first.pk == soonest.pk and first.certificate.days_left < 0
    assert "Expired" in many.content.decode()


# --- certificates


@pytest.mark.parametrize("sort", ["-created", "name", "status", "expires", "created"])
def test_certificate_list_sorts_10000_certificates_with_the_same_queries_as_10(clients, data, sort):
    few, many = fetch_as_both(clients, reverse("ui:certificate-list"), {"sort": sort})
    assert shown(many) == expected_first_page(data["rows"]["many"]["certificates"], sort)
    assert shown(few) == expected_first_page(data["rows"]["few"]["certificates"], sort)
    assert len(shown(many)) == PER_PAGE
    assert f'aria-sort="{"descending" if sort.startswith("-") else "ascending"}"' in many.content.decode()


def test_certificate_list_default_is_newest_first_with_days_left_and_site(clients, data):
    _few, many = fetch_as_both(clients, reverse("ui:certificate-list"), {})
    assert shown(many) == expected_first_page(data["rows"]["many"]["certificates"], "-created")
    html = many.content.decode()
    assert 'aria-sort="descending"' in html and "badge--valid" in html and "Page 1 of 200" in html


def test_certificate_list_later_page_and_search_of_10000(clients, data):
    _few, many = fetch_as_both(clients, reverse("ui:certificate-list"), {"page": 100, "sort": "name"})
    by_name = sorted(data["rows"]["many"]["certificates"], key=lambda row: row.name)
    assert shown(many) == [row.pk for row in by_name[99 * PER_PAGE:100 * PER_PAGE]]

    for label in ("few", "many"):  # a name of a site with a certificate, in upper case
        hit = next(row for row in data["rows"][label]["certificates"] if row.name.startswith("site"))
        term = hit.name.upper().replace("SITE", "WWW.SITE")
        response, _queries = fetch(clients[label], reverse("ui:certificate-list"), {"q": term})
        assert shown(response) == [hit.pk]
    _few, many = fetch_as_both(clients, reverse("ui:certificate-list"), {"q": "site0000"})
    hits = {row.pk for row in data["rows"]["many"]["certificates"] if row.name.startswith("site0000")}
    assert hits and set(shown(many)) == hits


# --- accounts and DNS credentials: an admin sees every customer's


@pytest.mark.parametrize("name", ["ui:account-list", "ui:dns-credential-list"])
def test_accounts_and_dns_credentials_are_paginated_with_the_same_queries(clients, name):
    few, many = fetch_as_both(clients, reverse(name), {"page": 3})
    assert len(shown(many)) == PER_PAGE and "Page 3 of 200" in many.content.decode()
    assert len(shown(few)) == FEW
