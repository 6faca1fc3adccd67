"""The API keeps its published promise: schemathesis generates requests for every operation of
the OpenAPI schema (served by the app itself, through WSGI) and checks each answer: no 5xx, the
status, content type, headers and body as documented, bad input refused.

Bounded and repeatable: a few examples per operation, derandomized. Nothing leaves the process:
the CA, DNS providers and notification services are fakes at their seams.
"""

import itertools
from unittest import mock

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from certs import accounts, dns_credentials, notifications
from panel.security import tokens

EXAMPLES_PER_OPERATION = 10

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

# Every standard check runs but one: "schema-valid data is accepted". A JSON schema cannot say
# that a name must resolve to a valid domain, a text must be a PEM certificate matching its key,
# or a path must lie below an allowed root, so those requests rightly answer 400 (documented).
# Still checked: no 5xx, status codes, content types, headers and bodies as documented,
# schema-violating input refused, authentication enforced.
SEMANTIC_VALIDATION = [positive_data_acceptance]


class FakeCa:
    """The CA at the seam every ACME account goes through (certs.accounts.new_client)."""

    _accounts = itertools.count(1)

    def __init__(self, directory_url, account_key_pem, account_url=None):
        self.account_url = account_url

    def register(self, email, eab_kid, eab_hmac_key):
        return f"https://ca.test/acct/{next(self._accounts)}"

    def revoke(self, cert_pem, reason_code):
        return None


@pytest.fixture
def offline(queued, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    settings.INSTALL_ROOTS = [tmp_path / "install"]
    with mock.patch.object(accounts, "new_client", FakeCa), \
            mock.patch.object(dns_credentials, "test_credential", return_value=(True, "ok")), \
            mock.patch.object(notifications, "send_test", return_value=(True, "sent")):
        yield


@pytest.fixture
def connection_kept_open():
    """What Django's test client does: the app must not close the test's database connection
    after each request (on PostgreSQL that would end the test's transaction mid-test)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(django_user_model, db):
    """A read-write key made the way the panel makes them (panel.security.tokens), as a script would use it."""
    user, _created = django_user_model.objects.get_or_create(username="schemathesis")
    return tokens.issue_token(user, "schemathesis")[1]


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_answers_as_its_schema_says(case, token, offline, connection_kept_open):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, excluded_checks=SEMANTIC_VALIDATION)


def test_the_token_operations_are_among_those_run():
    paths = schema.raw_schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/tokens/"]) and {"get", "delete"} <= set(paths["/api/v1/tokens/{id}/"])
