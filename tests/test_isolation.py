"""One customer never reaches another's objects: every URL, every API operation, as bob, on alice's ids.

The URLs come from Django's resolver and the API operations from drf-spectacular's schema, so a
new page or endpoint is covered without editing this file. An id in a URL is mapped to its model
through the view's own queryset where the code tells (DRF viewsets); the small table below covers
the rest, and a new pattern it does not cover fails the test instead of being skipped. Pages
without an id (account, security, settings, lists) are written to as bob too: nothing but his own
rows may change, and a page only an administrator reaches must be named as admin-only.
"""

import functools
import re
from dataclasses import dataclass
from types import SimpleNamespace
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from certs import accounts, dns_credentials, notifications, versions
from certs.models import (AcmeAccount, Certificate, CertificateVersion, DnsCredential, InstallTarget,
                          NotificationChannel, Order, ReloadPreset)
from panel.hosting import sites
from panel.models import ApiToken, AuditEntry, AuthenticatorDevice, Site
from panel.security import audit, tokens, twofactor
from tests.test_dns_secrets import every_row_as_text
from tests.test_versions import add_version, make_chain

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py: nothing reaches Celery

# Every string of alice's objects carries this word; bob must never read it.
MARKER = "alice"

# Views whose URL id the code gives no way to derive (function views and plain APIViews):
# (URL name, kwarg) -> model. A pattern with an id that is in neither the table nor a viewset
# fails test_every_object_url_is_mapped.
ID_MODELS = {
    ("ui:site-detail", "pk"): Site,
    ("ui:site-edit", "pk"): Site,
    ("ui:site-delete", "pk"): Site,
    ("ui:site-force-https", "pk"): Site,
    ("ui:site-config-preview", "pk"): Site,
    ("ui:site-config-status", "pk"): Site,
    ("ui:certificate-issue", "site_pk"): Site,
    ("ui:certificate-one-click", "site_pk"): Site,
    ("ui:certificate-renew", "pk"): Certificate,
    ("ui:certificate-detail", "pk"): Certificate,
    ("ui:certificate-history", "pk"): Certificate,
    ("ui:certificate-reissue", "pk"): Certificate,
    ("ui:order-status", "pk"): Order,
    ("ui:order-continue", "pk"): Order,
    ("ui:dns-credential-detail", "pk"): DnsCredential,
    ("ui:dns-credential-edit", "pk"): DnsCredential,
    ("ui:dns-credential-test", "pk"): DnsCredential,
    ("ui:dns-credential-delete", "pk"): DnsCredential,
    ("ui:version-download", "pk"): CertificateVersion,
    ("ui:version-revoke", "pk"): CertificateVersion,
    ("ui:notification-test", "pk"): NotificationChannel,
    ("ui:notification-delete", "pk"): NotificationChannel,
    ("ui:token-revoke", "pk"): ApiToken,
    ("ui:user-edit", "pk"): User,
    ("ui:reload-preset-edit", "pk"): ReloadPreset,
    ("ui:reload-preset-delete", "pk"): ReloadPreset,
    ("certificate-versions", "pk"): Certificate,
    ("certificate-version-download", "pk"): CertificateVersion,
    ("certificate-version-revoke", "pk"): CertificateVersion,
}
# Pages for administrators only (panel.toolkit.access.admin_required). A page an admin reaches and a
# user does not, even with her own ids, must be listed here (test_admin_only_pages_refuse_a_user):
# the list cannot fall behind the URLs.
ADMIN_ONLY_PAGES = {"ui:audit-log", "ui:settings", "ui:user-list", "ui:user-add", "ui:user-edit",
                    "ui:reload-preset-list", "ui:reload-preset-add", "ui:reload-preset-edit",
                    "ui:reload-preset-delete", "ui:certificate-issue-external", "ui:import", "ui:panel-https"}
# Kwargs that are not ids: every value the code accepts.
VALUE_KWARGS = {
    "fmt": versions.ExportFormat.values,  # ui:version-download
}
NOBODYS_ID = 987654
# Shared by design: none since reload presets have owners (an administrator's are offered to
# everyone only when marked shared).
SHARED_MODELS = set()

API_METHODS = ("get", "post", "put", "patch", "delete")
UI_METHODS = ("get", "post")
# A write carries fields the forms and endpoints ask for, so a view that checked its input
# before the owner would be caught answering 400 instead of 404.
WRITE_BODY = {"reason": "keyCompromise", "password": "pfx-password-1", "confirm": "1", "name": "bob's",
              "domains": "bob.example.org", "format": "pem-key"}


@dataclass(frozen=True)
class Route:
    name: str  # namespaced, for reverse()
    regex: str
    callback: object
    kwargs: tuple

    @property
    def is_api(self):
        return self.regex.startswith("^api/") or self.regex.startswith("api/")


def all_routes():
    """Every URL pattern of the project, includes walked, with its full regex and kwargs."""

    def walk(patterns, prefix, namespace):
        for entry in patterns:
            regex = prefix + entry.pattern.regex.pattern.lstrip("^")
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, regex.rstrip("$"), inner)
            elif isinstance(entry, URLPattern):
                kwargs = tuple(re.findall(r"\(\?P<(\w+)>", regex))
                yield Route(f"{namespace}{entry.name}" if entry.name else "", regex, entry.callback, kwargs)

    return list(walk(get_resolver().url_patterns, "", ""))


def model_of(route, kwarg):
    """The model whose rows `kwarg` looks up, from the viewset's queryset or the table."""
    view_class = getattr(route.callback, "cls", None)
    if view_class is not None and getattr(route.callback, "actions", None) and kwarg == view_class.lookup_field:
        view = view_class(request=SimpleNamespace(user=AnonymousUser()), kwargs={}, format_kwarg=None,
                          action=next(iter(route.callback.actions.values())))
        return view.get_queryset().model
    return ID_MODELS.get((route.name, kwarg))


@pytest.fixture
def www_root(settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    settings.INSTALL_ROOTS = [tmp_path / "install"]
    return tmp_path


@pytest.fixture
def alices_objects(alice, www_root):
    """One of alice's objects of every kind, each named with MARKER: model -> [instances]."""
    site = sites.save_site(Site(owner=alice, domains=["alice-shop.example.com"], root=str(www_root / "www" / "a")))
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory",
                                         email="alice@alice-mail.example", account_key="unused",
                                         account_url="https://ca.test/acct/alice")
    credential = dns_credentials.save_credential(
        DnsCredential(owner=alice), provider="rfc2136", name="alice-bind",
        credentials={"server": "127.0.0.1", "zone": "alice-zone.example", "tsig_key_name": "alice-key",
                     "tsig_secret": "YWxpY2Utc2VjcmV0"})
    issued = Certificate.objects.create(owner=alice, account=account, site=site, domains=site.domains,
                                        challenge="dns-01", dns_credential=credential)
    version = add_version(issued)
    uploaded = upload_as(alice, ["alice-upload.example.com"])
    channel = NotificationChannel.objects.create(owner=alice, name="alice-alerts", url="json://localhost/alice")
    # An import's reload command becomes a preset of the import's owner.
    preset = ReloadPreset.objects.create(name="alice-reload", command=["/bin/sh", "-c", "true"], owner=alice)
    target = InstallTarget.objects.create(owner=alice, certificate=issued, reload_preset=preset,
                                          fullchain_path=str(www_root / "install" / "alice" / "fullchain.pem"))
    token, _key = tokens.issue_token(alice, "alice-deploy-script")
    return {
        Site: [site], AcmeAccount: [account], DnsCredential: [credential], Certificate: [issued, uploaded],
        CertificateVersion: [version, uploaded.current_version], Order: [version.order],
        NotificationChannel: [channel], InstallTarget: [target], ApiToken: [token], User: [alice],
        ReloadPreset: [preset],
    }


def upload_as(user, names):
    leaf_pem, _chain, key_pem, intermediate = make_chain(names)
    from cryptography.hazmat.primitives import serialization

    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/api/v1/certificates/upload/", {
        "certificate": leaf_pem, "private_key": key_pem,
        "chain": intermediate.public_bytes(serialization.Encoding.PEM).decode()}, format="json")
    assert response.status_code == 201, response.content
    return Certificate.objects.get(pk=response.json()["id"])


@pytest.fixture
def seams(monkeypatch):
    """What alice's own writes would reach outside the database: the CA, DNS providers, apprise."""
    client = mock.Mock()
    monkeypatch.setattr(accounts, "client_for", lambda account: client)
    monkeypatch.setattr(dns_credentials, "test_credential", lambda credential: (True, "ok"))
    monkeypatch.setattr(notifications, "send_test", lambda channel: (True, "sent"))


def urls_for(route, objects):
    """(url, the same url with an id nobody has, object) for each of alice's objects the route can name."""
    id_kwargs = [k for k in route.kwargs if k not in VALUE_KWARGS]
    assert len(id_kwargs) == 1, f"{route.name or route.regex}: expected one id, got {id_kwargs}"
    model = model_of(route, id_kwargs[0])
    assert model is not None, f"{route.name or route.regex}: add ({route.name!r}, {id_kwargs[0]!r}) to ID_MODELS"
    if model in SHARED_MODELS:
        return []
    assert model in objects, f"{route.name}: build alice's {model.__name__} in alices_objects"
    value_kwargs = [k for k in route.kwargs if k in VALUE_KWARGS]
    urls = []
    for obj in objects[model]:
        for values in _combinations(value_kwargs):
            urls.append((reverse(route.name, kwargs={id_kwargs[0]: obj.pk, **values}),
                         reverse(route.name, kwargs={id_kwargs[0]: NOBODYS_ID, **values}), obj))
    return urls


def _combinations(names):
    if not names:
        return [{}]
    return [{names[0]: value, **rest} for value in VALUE_KWARGS[names[0]] for rest in _combinations(names[1:])]


def request(client, method, url, is_api):
    if is_api:
        query = required_query(url, method)
        if method == "get":
            return client.get(url, query)
        return getattr(client, method)(url + ("?" + urlencode(query) if query else ""), WRITE_BODY, format="json")
    return getattr(client, method)(url, WRITE_BODY if method == "post" else None)


def required_query(url, method):
    """The query parameters the schema says an operation requires (the download's ?format=),
    each with its first allowed value, so the operation's input checks pass."""
    match = resolve(url)
    return api_schema_queries().get((match.view_name, frozenset(match.kwargs), method), {})


@functools.cache
def api_schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@functools.cache
def api_schema_queries():
    queries = {}
    for template, item in api_schema()["paths"].items():
        match = resolve(re.sub(r"\{\w+\}", "1", template))
        for method, operation in item.items():
            queries[(match.view_name, frozenset(match.kwargs), method)] = {
                p["name"]: p["schema"]["enum"][0] for p in operation.get("parameters", [])
                if p["in"] == "query" and p.get("required") and "enum" in p.get("schema", {})}
    return queries


class RolledBack(Exception):
    pass


def status_rolled_back(client, method, url, is_api):
    """alice's own answer, her write undone: proves the URL names a real object of hers."""
    try:
        with transaction.atomic():
            status = request(client, method, url, is_api).status_code
            raise RolledBack
    except RolledBack:
        return status


def api_client(user):
    client = APIClient(raise_request_exception=False)  # a 500 is an answer to report, not a crash
    client.force_authenticate(user)
    return client


def object_routes():
    return [r for r in all_routes() if r.kwargs and set(r.kwargs) - set(VALUE_KWARGS)]


def test_every_object_url_is_mapped(alices_objects):
    unmapped = [r.name or r.regex for r in object_routes() if not urls_for(r, alices_objects)
                and model_of(r, next(k for k in r.kwargs if k not in VALUE_KWARGS)) not in SHARED_MODELS]
    assert unmapped == []


def test_bob_gets_404_or_403_for_alices_objects_on_every_url(alices_objects, alice, bob, seams):
    clients = {user: {False: _logged_in(user), True: api_client(user)} for user in (alice, bob)}
    before = dict(every_row_as_text())
    answers, alice_saw = [], set()
    for route in object_routes():
        methods = API_METHODS if route.is_api else UI_METHODS
        for url, missing, _obj in urls_for(route, alices_objects):
            for method in methods:
                alice_status = status_rolled_back(clients[alice][route.is_api], method, url, route.is_api)
                if alice_status not in (404, 405):
                    alice_saw.add(route.name)
                bob_status = request(clients[bob][route.is_api], method, url, route.is_api).status_code
                missing_status = request(clients[bob][route.is_api], method, missing, route.is_api).status_code
                answers.append((method.upper(), url, alice_status, bob_status, missing_status))
    # Refused every time; 405 only where alice is refused the method too.
    leaks = [a for a in answers if a[3] not in (403, 404) and not (a[3] == 405 and a[2] == 405)]
    assert leaks == [], "(method, url, alice, bob, bob on a missing id)"
    # An id of alice's answers bob exactly like an id that does not exist.
    assert [a for a in answers if a[3] != a[4]] == []
    # The mapping is right: alice reaches each route with her own ids, but the admin's pages.
    assert {r.name for r in object_routes() if urls_for(r, alices_objects)} - alice_saw <= ADMIN_ONLY_PAGES
    assert dict(every_row_as_text()) == before


def _logged_in(user):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def api_operations():
    """(path template, method) of every operation in the published schema."""
    return [(path, method) for path, item in api_schema()["paths"].items() for method in item
            if method in API_METHODS]


def test_every_api_operation_on_alices_ids_answers_bob_404_or_403(alices_objects, alice, bob, seams):
    client = api_client(bob)
    routes = {(r.name, frozenset(r.kwargs)): r for r in all_routes()}
    operations = [(p, m) for p, m in api_operations() if "{" in p]
    assert operations, "the schema lists operations on single objects"
    before = dict(every_row_as_text())
    refused, answers = 0, []
    for template, method in operations:
        match = resolve(re.sub(r"\{\w+\}", "1", template))
        route = routes[(match.view_name, frozenset(match.kwargs))]
        for url, _missing, _obj in urls_for(route, alices_objects):
            status = request(client, method, url, True).status_code
            answers.append((method.upper(), url, status))
            refused += status in (403, 404)
    assert [a for a in answers if a[2] not in (403, 404)] == []
    assert refused == len(answers) > 0
    assert dict(every_row_as_text()) == before


def test_pages_without_ids_show_bob_nothing_of_alices(alices_objects, alice, bob):
    bob_ui, bob_api = _logged_in(bob), api_client(bob)
    alice_ui, alice_api = _logged_in(alice), api_client(alice)
    shown_to_bob, shown_to_alice = [], []
    for route in all_routes():
        if route.kwargs and set(route.kwargs) - set(VALUE_KWARGS) or not route.name:
            continue
        for values in _combinations(list(route.kwargs)):
            url = reverse(route.name, kwargs=values)
            bob_client, alice_client = (bob_api, alice_api) if route.is_api else (bob_ui, alice_ui)
            bob_page = bob_client.get(url, follow=not route.is_api)
            if MARKER in _text(bob_page):
                shown_to_bob.append(url)
            if MARKER in _text(alice_client.get(url, follow=not route.is_api)):
                shown_to_alice.append(url)
    assert shown_to_bob == []
    # The same pages do list alice's objects to alice: the marker would show if it leaked.
    assert {reverse("ui:site-list"), reverse("ui:certificate-list"), reverse("ui:dns-credential-list"),
            reverse("ui:token-list"), "/api/v1/sites/", "/api/v1/notification-channels/", "/api/v1/install-targets/",
            "/api/v1/tokens/"} <= set(shown_to_alice)


def _text(response):
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


# --- pages without an id act on the requester only; admin pages refuse everyone else

BOBS_PASSWORD = "pw-bob-123"  # tests/conftest.py
# What the account pages ask for, so bob's writes are carried out (on him) rather than refused.
ACCOUNT_BODY = {"old_password": BOBS_PASSWORD, "new_password1": "bob-new-pw-4821", "new_password2": "bob-new-pw-4821",
                "require_two_factor": "on", "scope": tokens.Scope.READ_WRITE}


@pytest.fixture
def alice_has_two_factor(alice):
    AuthenticatorDevice.objects.create(user=alice, name="alice-phone", confirmed=True)
    return twofactor.new_recovery_codes(alice)


def bob_signed_in_with_two_factor(bob):
    """A fresh client for bob, past the second step, and a recovery code of his that works once."""
    if not twofactor.has_two_factor(bob):
        AuthenticatorDevice.objects.create(user=bob, name="bob-phone", confirmed=True)
    code = twofactor.new_recovery_codes(bob)[0]
    client = _logged_in(type(bob).objects.get(pk=bob.pk))  # his password may have changed: a stale one signs out
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = AuthenticatorDevice.objects.get(user=bob).persistent_id
    session.save()
    return client, code


def user_paths(model, user_model, depth=2):
    """Lookups from `model` to a user ("owner", "device__user", "certificate__owner"...)."""
    if model is user_model:
        return ["pk"]
    paths = []
    for field in model._meta.concrete_fields:
        if field.is_relation and field.related_model is user_model:
            paths.append(field.name)
        elif field.is_relation and depth > 1:
            paths += [f"{field.name}__{inner}" for inner in user_paths(field.related_model, user_model, depth - 1)
                      if inner != "pk"]
    return paths


def rows_not_of(user):
    """Every row in the database except the user's own (and the session store, which every
    sign-in writes): {(model, pk): values}."""
    user_model = type(user)
    rows = {}
    for model in apps.get_models():
        if model is Session:
            continue
        queryset = model._base_manager.all()
        for path in user_paths(model, user_model):
            queryset = queryset.exclude(**{path: user.pk})
        if model is not user_model and "username" in {f.name for f in model._meta.concrete_fields}:
            queryset = queryset.exclude(username=user.get_username())  # django-axes names users, no key
        if model is AuditEntry:  # a test's sign-in has no request.user: its entry names the user as the object
            queryset = queryset.exclude(object_type=audit.ObjectType.USER, object_id=str(user.pk))
        rows.update({(model._meta.label, row["pk"]): row for row in queryset.values("pk", *[
            f.attname for f in model._meta.concrete_fields])})
    return rows


def routes_without_ids():
    return [r for r in all_routes() if r.name and not (r.kwargs and set(r.kwargs) - set(VALUE_KWARGS))]


def test_bob_writing_to_every_page_without_an_id_changes_only_his_own_rows(
        alices_objects, alice_has_two_factor, alice, bob, seams):
    alice_ui = _logged_in(alice)
    session = alice_ui.session
    session[DEVICE_ID_SESSION_KEY] = AuthenticatorDevice.objects.get(user=alice).persistent_id
    session.save()
    before = rows_not_of(bob)
    answers, turned_two_factor_off = [], set()
    for route in routes_without_ids():
        for values in _combinations(list(route.kwargs)):
            url = reverse(route.name, kwargs=values)
            if route.is_api:
                answers.append((url, api_client(bob).post(url, WRITE_BODY, format="json").status_code))
            else:
                client, code = bob_signed_in_with_two_factor(bob)
                response = client.post(url, {**WRITE_BODY, **ACCOUNT_BODY, "code": code})
                answers.append((url, response.status_code))
                if not twofactor.has_two_factor(bob):
                    turned_two_factor_off.add(route.name)
                if route.name.startswith("ui:"):  # the pages saw bob signed in, not a visitor
                    assert not response.get("Location", "").startswith(reverse("login")), url
    assert [a for a in answers if a[1] >= 500] == []
    assert rows_not_of(bob) == before
    # The account pages did act, on bob: his password changed, his two-factor was turned off.
    bob.refresh_from_db()
    assert not bob.check_password(BOBS_PASSWORD) and turned_two_factor_off == {"ui:two-factor-disable"}
    # ...and alice, signed in meanwhile, still is, with her two-factor and recovery codes.
    assert alice_ui.get(reverse("ui:security")).status_code == 200
    assert twofactor.recovery_codes_left(alice) == len(alice_has_two_factor)


def test_admin_only_pages_refuse_a_user(alices_objects, alice, bob, django_user_model):
    admin = _logged_in(django_user_model.objects.create_superuser("admin", password="pw-admin-123"))
    alice_ui, bob_ui = _logged_in(alice), _logged_in(bob)
    preset = ReloadPreset.objects.create(name="admin-reload", command=["/bin/true"])
    objects = {**alices_objects, ReloadPreset: [preset]}
    urls, reached_by_admin_only = {}, set()
    for route in all_routes():
        if route.is_api or not route.name:
            continue
        ids = {k: objects[model_of(route, k)][0].pk for k in route.kwargs if k not in VALUE_KWARGS}
        urls[route.name] = url = reverse(route.name, kwargs={**ids, **_combinations(
            [k for k in route.kwargs if k in VALUE_KWARGS])[0]})
        # alice owns the objects named: what she cannot open there, only an admin may.
        if admin.get(url).status_code == 200 and alice_ui.get(url).status_code != 200:
            reached_by_admin_only.add(route.name)
    assert reached_by_admin_only == ADMIN_ONLY_PAGES
    before = rows_not_of(bob)
    refused = [(method, name, getattr(bob_ui, method)(urls[name], {**WRITE_BODY, **ACCOUNT_BODY}
                                                      if method == "post" else None).status_code)
               for name in ADMIN_ONLY_PAGES for method in UI_METHODS]
    assert [r for r in refused if r[2] not in (403, 404)] == []
    assert rows_not_of(bob) == before
