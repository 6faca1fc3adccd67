"""DNS credentials stay secret: encrypted in every table, absent from every API answer."""

import base64

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

SECRET = base64.b64encode(b"tsig-secret-that-must-not-leak-0123").decode()


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("dana"))
    return client


def every_row_as_text():
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            yield table, repr(cursor.fetchall())


def test_a_dns_secret_is_in_no_table_and_no_response(api):
    created = api.post("/api/v1/dns-credentials/", {
        "provider": "rfc2136", "name": "BIND",
        "credentials": {"server": "127.0.0.1", "zone": "example.test", "tsig_key_name": "k", "tsig_secret": SECRET},
    }, format="json")
    assert created.status_code == 201, created.content
    credential_id = created.json()["id"]
    answers = [created.content.decode()]
    for path in ("/api/v1/dns-credentials/", f"/api/v1/dns-credentials/{credential_id}/", "/api/v1/dns-providers/"):
        response = api.get(path)
        assert response.status_code == 200
        answers.append(response.content.decode())
    assert not [a for a in answers if SECRET in a]
    leaking = [table for table, rows in every_row_as_text() if SECRET in rows or "tsig_secret" in rows]
    assert leaking == []
    # ...and yet the panel can read it back to use it.
    from certs.models import DnsCredential

    assert DnsCredential.objects.get(pk=credential_id).values()["tsig_secret"] == SECRET
