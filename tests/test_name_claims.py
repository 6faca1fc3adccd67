"""One owner per registrable domain: a user cannot add a name under a registrable domain (by the
public suffix list, bundled with tldextract) that another user's site already has a name under,
unless an administrator shared it on the Settings page. Administrators are not restricted.
The page and the API are refused alike. Nothing reaches Celery (tests/conftest.py `queued`)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from panel.hosting import sites
from panel.models import PanelSettings, Site, SiteDomain
from panel.security import homes

pytestmark = pytest.mark.usefixtures("queued")

REFUSED = "belongs to another user: names under it can only be added by its owner"
SHAREABLE = "An administrator can share it on the Settings page"


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", password="pw-root-123")


@pytest.fixture
def root_client(root):
    client = Client()
    client.force_login(root)
    return client


def add_site(owner, *names):
    return sites.save_site(Site(owner=owner, domains=list(names), root=homes.default_document_root(owner, names[0])))


def api_add(client, *names):
    # By domain alone: the document root is made in the user's home.
    return client.post("/api/v1/sites/", {"domains": list(names)}, content_type="application/json")


def page_add(client, *names):
    return client.post(reverse("ui:site-add"), {"domains": "\n".join(names), "http2": "on"})


def test_a_user_cannot_add_a_name_under_another_users_domain(alice, bob_client):
    add_site(alice, "example.com")

    api = api_add(bob_client, "www.example.com")
    page = page_add(bob_client, "shop.example.com", "bob-shop.net")

    assert api.status_code == 400
    assert f"example.com {REFUSED}. {SHAREABLE}." in str(api.json()["domains"])
    assert page.status_code == 200 and REFUSED in page.content.decode()
    assert not Site.objects.exclude(owner=alice).exists()


def test_the_first_name_claims_the_tree_for_its_owner(alice_client, bob_client):
    assert api_add(bob_client, "www.customer.com").status_code == 201

    # the customer comes later: bob holds the whole tree, apex included
    response = api_add(alice_client, "customer.com")
    assert response.status_code == 400 and f"customer.com {REFUSED}" in str(response.json())


def test_the_owner_adds_more_names_under_their_own_domain(alice, alice_client):
    site = add_site(alice, "example.com")

    assert api_add(alice_client, "shop.example.com").status_code == 201
    edited = alice_client.patch(f"/api/v1/sites/{site.pk}/", {"domains": ["example.com", "*.example.com"]},
                                content_type="application/json")
    assert edited.status_code == 200
    assert set(SiteDomain.objects.values_list("name", flat=True)) == {"example.com", "*.example.com",
                                                                     "shop.example.com"}


def test_an_administrator_can_share_a_domain(alice, bob_client, root_client):
    add_site(alice, "hosting.example", "example.com")

    saved = root_client.post(reverse("ui:settings"), {"shared_names": "Example.com\nexample.com"})
    assert saved.status_code == 302
    assert PanelSettings.load().shared_names == "example.com"
    assert "example.com" in root_client.get(reverse("ui:settings")).content.decode()

    assert api_add(bob_client, "bob.example.com").status_code == 201
    assert api_add(bob_client, "bob.hosting.example").status_code == 400  # not shared


def test_only_a_registrable_domain_can_be_shared(root_client):
    response = root_client.post(reverse("ui:settings"), {"shared_names": "www.example.co.uk"})

    assert response.status_code == 200
    assert "is not a registrable domain: share example.co.uk instead" in response.content.decode()
    assert PanelSettings.load().shared_names == ""


def test_an_administrator_is_not_restricted(alice, root_client):
    add_site(alice, "example.com")

    assert api_add(root_client, "www.example.com").status_code == 201


@pytest.mark.parametrize("wide", ["*.co.uk", "*.github.io", "*.com.cn", "co.uk"])
def test_a_user_cannot_add_a_name_that_takes_in_every_owners_names(alice, bob_client, root_client, wide):
    # A wildcard on a public suffix would get every customer.co.uk host not matched exactly.
    add_site(alice, "customer.co.uk")
    refused = api_add(bob_client, wide)
    assert refused.status_code == 400
    assert "would take in the names of every owner under it" in refused.json()["domains"][0]
    assert not SiteDomain.objects.filter(name=wide).exists()
    assert api_add(root_client, wide).status_code == 201  # an administrator knows what they serve


@pytest.mark.parametrize(("alices", "bobs", "refused"), [
    ("shop.example.co.uk", "www.example.co.uk", True),    # co.uk is a public suffix: example.co.uk is the tree
    ("example.co.uk", "other.co.uk", False),
    ("alice.github.io", "bob.github.io", False),           # a private suffix: each user's own tree
    ("www.alice.github.io", "alice.github.io", True),
    ("a.example.test", "b.example.test", True),            # unknown suffix: the last two labels
    ("xn--mnchen-3ya.de", "www.xn--mnchen-3ya.de", True),  # IDN, as stored: punycode
])
def test_public_and_private_suffixes_follow_the_public_suffix_list(alice, bob_client, alices, bobs,
                                                                  refused):
    add_site(alice, alices)

    response = api_add(bob_client, bobs)

    assert response.status_code == (400 if refused else 201), response.content


def test_names_already_on_the_site_do_not_count_as_added(alice, bob, bob_client, root_client):
    # an administrator gave bob a name under alice's domain; bob can still edit his site
    site = add_site(alice, "example.com")
    bobs = add_site(bob, "bob.example.com")

    response = bob_client.patch(f"/api/v1/sites/{bobs.pk}/", {"http2": False}, content_type="application/json")
    added = bob_client.patch(f"/api/v1/sites/{bobs.pk}/", {"domains": ["bob.example.com", "w.example.com"]},
                             content_type="application/json")

    assert response.status_code == 200 and added.status_code == 400
    assert site.domains == ["example.com"]
