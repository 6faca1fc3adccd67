"""Roles, quotas and what only an admin may do: users and reload presets, custom CA URLs,
document roots outside the allowed roots, notification URLs into the server's own network."""

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from certs.models import AcmeAccount, Certificate, InstallTarget, NotificationChannel, ReloadPreset
from panel.hosting import sites
from panel.models import RootGrant, Site, UserQuota

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py

ADMIN_PAGES = [("ui:user-list", []), ("ui:user-add", []), ("ui:user-edit", ["alice"]),
               ("ui:reload-preset-list", []), ("ui:reload-preset-add", []), ("ui:reload-preset-edit", ["preset"]),
               ("ui:reload-preset-delete", ["preset"])]


@pytest.fixture
def www_root(settings, tmp_path, alice, bob):
    """A shared directory an administrator granted both users (each has their home besides)."""
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    for user in (alice, bob):
        RootGrant.objects.create(user=user, path=str(tmp_path / "www"))
    return tmp_path / "www"


@pytest.fixture
def preset(db):
    return ReloadPreset.objects.create(name="nginx", command=["/usr/sbin/nginx", "-s", "reload"])


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def page_url(name, args, alice, preset):
    objects = {"alice": alice.pk, "preset": preset.pk}
    return reverse(name, args=[objects[a] for a in args])


@pytest.mark.parametrize("name, args", ADMIN_PAGES)
def test_admin_pages_are_forbidden_to_users_and_open_to_admins(alice_client, admin_client, alice, preset, name, args):
    url = page_url(name, args, alice, preset)
    assert alice_client.get(url).status_code == 403
    assert alice_client.post(url, {"name": "x", "command": "/bin/true", "role": "admin"}).status_code == 403
    assert admin_client.get(url).status_code == 200
    assert not get_user_model().objects.get(pk=alice.pk).is_superuser
    assert list(ReloadPreset.objects.values_list("name", flat=True)) == ["nginx"]


def test_only_admins_see_the_users_entry_in_the_navigation(alice_client, admin_client):
    assert reverse("ui:user-list") not in alice_client.get(reverse("ui:site-list")).content.decode()
    assert reverse("ui:user-list") in admin_client.get(reverse("ui:site-list")).content.decode()


def test_an_admin_creates_a_user_and_an_admin(admin_client):
    response = admin_client.post(reverse("ui:user-add"), {"username": "carol", "password": "long-enough-pw-7",
                                                          "role": "user"})
    carol = get_user_model().objects.get(username="carol")
    assert response["Location"] == reverse("ui:user-edit", args=[carol.pk])
    assert carol.check_password("long-enough-pw-7") and not carol.is_superuser
    admin_client.post(reverse("ui:user-add"), {"username": "dave", "password": "long-enough-pw-7", "role": "admin"})
    assert get_user_model().objects.get(username="dave").is_superuser


def test_a_weak_password_or_a_taken_name_is_refused(admin_client, alice):
    html = admin_client.post(reverse("ui:user-add"), {"username": "Alice", "password": "password",
                                                      "role": "user"}).content.decode()
    assert "already exists" in html and "too common" in html
    assert get_user_model().objects.count() == 2


def test_an_admin_sets_role_active_and_quotas(admin_client, alice):
    admin_client.post(reverse("ui:user-edit", args=[alice.pk]),
                      {"role": "admin", "max_sites": "3", "max_certificates": ""})
    alice.refresh_from_db()
    assert alice.is_superuser and not alice.is_active
    assert (alice.quota.max_sites, alice.quota.max_certificates) == (3, None)
    html = admin_client.get(reverse("ui:user-list")).content.decode()
    assert "0 / 3" in html


def test_an_admin_cannot_demote_or_deactivate_themselves(admin_client, admin_user):
    html = admin_client.post(reverse("ui:user-edit", args=[admin_user.pk]), {"role": "user"}).content.decode()
    assert "cannot remove your own administrator role" in html
    admin_user.refresh_from_db()
    assert admin_user.is_superuser and admin_user.is_active


# --- quotas


def test_the_site_quota_stops_the_next_site_in_the_ui_and_the_api(alice, alice_client, www_root):
    UserQuota.objects.create(user=alice, max_sites=1)
    first = alice_client.post(reverse("ui:site-add"), {"domains": "a.example.com", "root": str(www_root / "a")})
    assert first.status_code == 302
    second = alice_client.post(reverse("ui:site-add"), {"domains": "b.example.com", "root": str(www_root / "b")})
    assert "The limit of 1 site for this account is reached" in second.content.decode()
    answer = api_for(alice).post("/api/v1/sites/", {"domains": ["c.example.com"], "root": str(www_root / "c")},
                                 format="json")
    assert answer.status_code == 400
    assert "The limit of 1 site" in answer.json()["non_field_errors"][0]
    assert Site.objects.filter(owner=alice).count() == 1


def test_the_certificate_quota_answers_400_and_counts_per_owner(alice, bob, www_root):
    UserQuota.objects.create(user=alice, max_certificates=1)
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/dir", account_key="x",
                                         account_url="https://ca.test/acct/1")
    Certificate.objects.create(owner=bob, domains=["bob.example.com"])  # someone else's: not counted
    sites.save_site(Site(owner=alice, domains=["a.example.com", "b.example.com"], root=str(www_root / "a")))
    api = api_for(alice)
    body = {"acme_account": account.pk, "domains": ["a.example.com"]}
    assert api.post("/api/v1/certificates/", body, format="json").status_code == 201
    answer = api.post("/api/v1/certificates/", {**body, "domains": ["b.example.com"]}, format="json")
    assert answer.status_code == 400
    assert "The limit of 1 certificate for this account is reached" in answer.json()["non_field_errors"][0]
    assert Certificate.objects.filter(owner=alice).count() == 1


# --- reload presets


def test_an_admin_makes_edits_and_deletes_a_preset(admin_client):
    admin_client.post(reverse("ui:reload-preset-add"), {"name": "nginx", "command": "/usr/sbin/nginx\n-s\nreload",
                                                        "timeout_seconds": "30"})
    preset = ReloadPreset.objects.get()
    assert (preset.command, preset.timeout_seconds) == (["/usr/sbin/nginx", "-s", "reload"], 30)
    admin_client.post(reverse("ui:reload-preset-edit", args=[preset.pk]),
                      {"name": "nginx", "command": "/usr/bin/systemctl\nreload\nnginx web", "timeout_seconds": "60"})
    preset.refresh_from_db()
    assert preset.command == ["/usr/bin/systemctl", "reload", "nginx web"]
    admin_client.post(reverse("ui:reload-preset-delete", args=[preset.pk]))
    assert not ReloadPreset.objects.exists()


def test_a_preset_needs_an_absolute_program(admin_client):
    html = admin_client.post(reverse("ui:reload-preset-add"), {"name": "x", "command": "systemctl\nreload",
                                                               "timeout_seconds": "30"}).content.decode()
    assert "absolute path" in html and not ReloadPreset.objects.exists()


def test_a_preset_in_use_is_not_deleted(admin_client, alice, preset):
    certificate = Certificate.objects.create(owner=alice, domains=["a.example.com"])
    InstallTarget.objects.create(owner=alice, certificate=certificate, cert_path="/x", reload_preset=preset)
    admin_client.post(reverse("ui:reload-preset-delete", args=[preset.pk]))
    assert ReloadPreset.objects.filter(pk=preset.pk).exists()


def test_admins_write_presets_through_the_api_with_the_same_rules(admin_user, alice, preset):
    admin = api_for(admin_user)
    made = admin.post("/api/v1/reload-presets/", {"name": "caddy", "command": ["/usr/bin/caddy", "reload"]},
                      format="json")
    assert made.status_code == 201
    assert admin.post("/api/v1/reload-presets/", {"name": "bad", "command": ["caddy"]},
                      format="json").status_code == 400
    assert api_for(alice).patch(f"/api/v1/reload-presets/{preset.pk}/", {"command": ["/bin/sh"]},
                                format="json").status_code == 403
    assert api_for(alice).delete(f"/api/v1/reload-presets/{preset.pk}/").status_code == 403
    assert ReloadPreset.objects.get(pk=preset.pk).command == ["/usr/sbin/nginx", "-s", "reload"]


# --- custom CA directory URLs


def test_users_are_not_offered_a_custom_ca_and_cannot_post_one(alice_client):
    html = alice_client.get(reverse("ui:account-add")).content.decode()
    assert 'value="custom"' not in html and 'name="directory_url"' not in html
    with mock.patch("certs.accounts.new_client") as new_client:
        response = alice_client.post(reverse("ui:account-add"), {"ca": "custom",
                                                                 "directory_url": "http://169.254.169.254/"})
    assert "custom is not one of the available choices" in response.content.decode()
    new_client.assert_not_called()


def test_the_api_refuses_a_users_custom_directory_url(alice, admin_user):
    with mock.patch("certs.accounts.new_client") as new_client:
        answer = api_for(alice).post("/api/v1/acme-accounts/", {"directory_url": "https://10.0.0.5/dir"},
                                     format="json")
        assert answer.status_code == 400 and "Only an administrator" in answer.json()["directory_url"][0]
        new_client.assert_not_called()
        new_client.return_value.register.return_value = "https://ca.test/acct/9"
        assert api_for(admin_user).post("/api/v1/acme-accounts/", {"directory_url": "https://10.0.0.5/dir"},
                                        format="json").status_code == 201
        # A preset's URL, given as a URL, is a preset.
        assert api_for(alice).post("/api/v1/acme-accounts/", {
            "directory_url": "https://acme-v02.api.letsencrypt.org/directory"}, format="json").status_code == 201


# --- document roots


def test_only_admins_may_use_a_document_root_outside_the_allowed_roots(alice_client, admin_client, www_root):
    (www_root.parent / "opt").mkdir()
    outside = {"domains": "a.example.com", "root": str(www_root.parent / "opt"),
               "confirm_system_root": "on"}  # tests/test_homes.py: without, it is refused
    assert "must be inside one of the allowed directories" in alice_client.post(reverse("ui:site-add"),
                                                                                outside).content.decode()
    assert admin_client.post(reverse("ui:site-add"), outside).status_code == 302
    assert Site.objects.get().root == outside["root"]


@pytest.mark.parametrize("root", ["shop", "shop/public", ""])
def test_a_user_cannot_reuse_another_owners_document_root(alice, bob, www_root, root):
    sites.save_site(Site(owner=alice, domains=["a.example.com"], root=str(www_root / "shop")))
    answer = api_for(bob).post("/api/v1/sites/", {"domains": ["b.example.com"], "root": str(www_root / root)},
                               format="json")
    assert answer.status_code == 400 and "another account's document root" in answer.json()["root"][0]
    # Her own second site may share the directory.
    assert api_for(alice).post("/api/v1/sites/", {"domains": ["c.example.com"], "root": str(www_root / root)},
                               format="json").status_code == 201


# --- notification URLs


@pytest.mark.parametrize("url", ["json://127.0.0.1:8080/hook", "json://169.254.169.254/latest/meta-data",
                                 "json://10.1.2.3/x", "json://[::1]/x", "json://localhost/x", "xml://192.168.1.1/x",
                                 "json://[::ffff:127.0.0.1]/x"])
def test_users_cannot_send_notifications_into_the_servers_network(alice, admin_user, url):
    answer = api_for(alice).post("/api/v1/notification-channels/", {"name": "x", "url": url}, format="json")
    assert answer.status_code == 400 and "only an administrator" in answer.json()["url"][0]
    assert api_for(admin_user).post("/api/v1/notification-channels/", {"name": "x", "url": url},
                                    format="json").status_code == 201
    assert NotificationChannel.objects.filter(owner=alice).count() == 0


def test_users_may_send_notifications_to_public_hosts(alice):
    answer = api_for(alice).post("/api/v1/notification-channels/", {"name": "x", "url": "json://hooks.example.net/x"},
                                 format="json")
    assert answer.status_code == 201
