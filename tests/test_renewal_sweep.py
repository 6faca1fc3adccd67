"""The renewal sweep at scale: the due query is served by the index on next_renewal_at,
and a sweep starts orders for exactly the due certificates without an order in flight.

5,000 certificates, bulk-inserted once for the module inside a transaction that is rolled
back at the end; every test runs in a savepoint inside it (pytest-django's `db`). About
1 % are due, and some of those already have an active order. bench/renewal_sweep measures
the same at 1k, 10k and 100k.
"""

import datetime
import random

import pytest
from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import F

from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from certs.renewal import policy, sweep

N = 5_000
DUE_EVERY = 100  # ids divisible by this are due: 50 certificates
IN_FLIGHT_EVERY = 500  # ... of which these already have an active order: 10
# Real time: due() never renews a version younger than RENEWAL_MIN_AGE_SECONDS of real time.
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _fill():
    """Users, one account, N certificates each with a current version (issued long ago) and
    the finished order that issued it; a few failed renewals and in-flight orders."""
    rng = random.Random(5)
    day = datetime.timedelta(days=1)
    User = get_user_model()
    users = [User(id=u, username=f"sweep{u}", password="!") for u in range(1, 6)]
    User.objects.bulk_create(users)
    account = AcmeAccount.objects.create(owner_id=1, directory_url="https://ca.test/directory", account_key="-",
                                         account_url="https://ca.test/acct/1")
    certs, versions, orders = [], [], []
    due, in_flight, not_due_in_flight = set(), set(), set()
    order_id = 0
    for i in range(1, N + 1):
        owner = 1 + i % len(users)
        issued = NOW - rng.uniform(1, 60) * day
        if i % DUE_EVERY == 0:
            renew_at = NOW - rng.uniform(60, 3 * 86_400) * datetime.timedelta(seconds=1)
            due.add(i)
        else:
            renew_at = NOW + rng.uniform(60, 60 * 86_400) * datetime.timedelta(seconds=1)
        order_id += 1
        orders.append(Order(id=order_id, owner_id=owner, certificate_id=i, status=Order.Status.VALID,
                            finished_at=issued))
        versions.append(CertificateVersion(id=i, certificate_id=i, order_id=order_id, cert_pem="-", chain_pem="-",
                                           serial=format(i, "x"), issuer="CN=Test CA", not_before=issued,
                                           not_after=issued + 90 * day))
        certs.append(Certificate(id=i, owner_id=owner, account=account, domains=[f"c{i}.example.test"],
                                 status=Certificate.Status.VALID, current_version_id=i, next_renewal_at=renew_at))
        if i % 300 == 0:  # a failed renewal earlier: finished, does not hold the certificate back
            order_id += 1
            orders.append(Order(id=order_id, owner_id=owner, certificate_id=i, status=Order.Status.INVALID,
                                is_renewal=True, finished_at=NOW - day))
        if i % IN_FLIGHT_EVERY == 0 or i % 1_000 == 1:  # in flight: a due one, or a user's re-issue
            order_id += 1
            orders.append(Order(id=order_id, owner_id=owner, certificate_id=i, status=Order.Status.AUTHORIZING))
            (in_flight if i in due else not_due_in_flight).add(i)
    Certificate.objects.bulk_create(certs, batch_size=1_000)
    CertificateVersion.objects.bulk_create(versions, batch_size=1_000)
    Order.objects.bulk_create(orders, batch_size=1_000)
    # Never issued: no current version, no renewal time.
    Certificate.objects.bulk_create([Certificate(id=N + k, owner_id=1, account=account, domains=[f"n{k}.example.test"])
                                     for k in range(1, 4)])
    # created_at is auto_now_add: bulk_create stamps it "now"; these versions are old.
    CertificateVersion.objects.update(created_at=F("not_before"))
    # Explicit ids: move PostgreSQL's sequences past them (the sweep inserts orders).
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [User, AcmeAccount, Certificate,
                                                                  CertificateVersion, Order]):
            cursor.execute(sql)
    return {"due": due, "in_flight": in_flight, "not_due_in_flight": not_due_in_flight, "last_order_id": order_id}


@pytest.fixture(scope="module")
def population(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        truth = _fill()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # the planner sees 5,000 rows, not an empty table
        yield truth
        transaction.set_rollback(True)


def _next_renewal_index():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "certs_certificate")
    names = [name for name, c in constraints.items() if c["index"] and c["columns"] == ["next_renewal_at"]]
    assert names, "no index on certs_certificate.next_renewal_at"
    return names[0]


def _plan(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return [row[3] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN " + sql, params)
        return [row[0] for row in cursor.fetchall()]


def _queries():
    """The query the sweep runs (with its LIMIT) and the due query without one."""
    from django.conf import settings

    return {"sweep": policy.due(NOW)[: settings.RENEWAL_SWEEP_LIMIT],
            "ids": policy.due(NOW).values_list("id", flat=True)}


def test_due_query_uses_the_next_renewal_at_index(population, db):
    index = _next_renewal_index()
    for label, queryset in _queries().items():
        plan = "\n".join(_plan(queryset))
        if connection.vendor == "sqlite":
            assert f"SEARCH certs_certificate USING INDEX {index} (next_renewal_at<?)" in plan, (label, plan)
            assert "SCAN certs_certificate\n" not in plan + "\n" and "SCAN certs_certificate " not in plan, (label, plan)
        else:
            assert "Index" in plan and index in plan, (label, plan)
            assert "Seq Scan on certs_certificate " not in plan, (label, plan)
        # The NOT EXISTS on orders is an index lookup too.
        assert "Seq Scan on certs_order " not in plan and "SCAN U0" not in plan, (label, plan)


def test_due_query_reads_no_table_in_full(population, db):
    """Every table the due query touches grows with the certificates (versions and orders
    with every renewal), so none may be read in full."""
    for label, queryset in _queries().items():
        plan = _plan(queryset)
        if connection.vendor == "sqlite":
            assert not [line for line in plan if line.startswith("SCAN ")], (label, plan)
        else:
            assert not [line for line in plan if "Seq Scan" in line], (label, "\n".join(plan))


def test_sweep_starts_exactly_the_due_certificates_once(population, db, queued, django_capture_on_commit_callbacks):
    expected = population["due"] - population["in_flight"]
    assert len(expected) == N // DUE_EVERY - len(population["in_flight"]) == 40
    fields = ("id", "next_renewal_at", "status", "last_error", "renewal_failures", "current_version_id")
    not_due = Certificate.objects.filter(next_renewal_at__gt=NOW)
    before = set(not_due.values_list(*fields))
    not_due_orders_before = set(Order.objects.filter(certificate__next_renewal_at__gt=NOW).values_list("id", "status"))

    assert set(policy.due(NOW).values_list("id", flat=True)) == expected
    with django_capture_on_commit_callbacks(execute=True):
        started = sweep.sweep(NOW)

    assert sorted(started) == sorted(expected)
    new_orders = Order.objects.filter(pk__gt=population["last_order_id"])
    assert sorted(new_orders.values_list("certificate_id", flat=True)) == sorted(expected)
    assert all(new_orders.values_list("is_renewal", flat=True))
    assert sorted(call.args[0] for call in queued.enqueue.call_args_list) == sorted(new_orders.values_list("id",
                                                                                                          flat=True))
    # Still one active order per certificate, the pre-existing ones included.
    active = Order.objects.exclude(status__in=Order.FINISHED)
    assert set(active.values_list("certificate_id", flat=True)) == (
        expected | population["in_flight"] | population["not_due_in_flight"])
    assert active.count() == len(expected | population["in_flight"] | population["not_due_in_flight"])

    # Certificates not yet due: untouched, and no order for them.
    assert set(not_due.values_list(*fields)) == before
    assert set(Order.objects.filter(certificate__next_renewal_at__gt=NOW).values_list("id", "status")) \
        == not_due_orders_before

    # A second sweep finds nothing to do.
    calls = queued.enqueue.call_count
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep.sweep(NOW) == []
    assert queued.enqueue.call_count == calls
    assert Order.objects.filter(pk__gt=population["last_order_id"]).count() == len(expected)


def test_a_certificate_taken_in_the_meantime_is_skipped_and_the_others_start(
        population, db, queued, django_capture_on_commit_callbacks, monkeypatch):
    # As if the user (or another sweep) started orders for the in-flight certificates between
    # the due query and the sweep's inserts: the database refuses those, the rest start.
    raced = population["in_flight"]
    expected = population["due"] - raced
    monkeypatch.setattr(policy, "due", lambda now: Certificate.objects.filter(pk__in=population["due"]).order_by("id"))
    with django_capture_on_commit_callbacks(execute=True):
        started = sweep.sweep(NOW)

    assert sorted(started) == sorted(expected)
    new_orders = Order.objects.filter(pk__gt=population["last_order_id"])
    assert sorted(new_orders.values_list("certificate_id", flat=True)) == sorted(expected)
    assert queued.enqueue.call_count == len(expected)  # queued once committed, the refused ones never
