"""One consistent view of several rows that a worker commits together.

A response that reads a certificate and then its order in two statements can see a failure
half-committed between them: the order invalid, the certificate's last_error still empty.
Inside `snapshot()` every statement sees the database as of the first one.
"""
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def snapshot():
    if connection.in_atomic_block:  # the caller's transaction already decides what it sees
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # READ COMMITTED takes a new snapshot per statement; REPEATABLE READ keeps the first.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # SQLite: the transaction begins IMMEDIATE (settings), so no writer commits until it ends.
        yield
