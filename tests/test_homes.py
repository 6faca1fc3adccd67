"""A home per user: a user's document roots and install paths lie in <HOME_ROOT>/<name>/ or in a
directory an administrator granted them; a site by domain alone gets a directory there with a
start page; paths stored before homes keep working through grants the upgrade made."""

import importlib
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from certs.models import Certificate, InstallTarget
from panel.hosting import sites
from panel.models import RootGrant, Site
from panel.security import homes

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def add_site(user, **fields):
    return api_for(user).post("/api/v1/sites/", fields, format="json")


@pytest.fixture
def shared_roots(settings, tmp_path):
    """The roots as a server had them before homes: every user could pick any directory below these."""
    settings.ALLOWED_ROOTS = [tmp_path / "www", Path("/var/www")]
    settings.INSTALL_ROOTS = [tmp_path / "install"]
    (tmp_path / "www").mkdir()
    (tmp_path / "install").mkdir()
    return tmp_path


def test_a_site_by_domain_alone_gets_a_directory_with_a_start_page_in_the_home(alice_client, alice, home_root):
    response = alice_client.post(reverse("ui:site-add"), {"domains": "shop.example.com\nwww.shop.example.com"})
    assert response.status_code == 302
    site = Site.objects.get()
    assert site.root == str(home_root / "alice" / "shop.example.com")
    page = (home_root / "alice" / "shop.example.com" / "index.html").read_text()
    assert "<title>shop.example.com</title>" in page and "Replace this page with your own content" in page
    assert "alice" not in page and str(home_root) not in page  # public: no account, no path


def test_the_api_makes_the_same_default_and_a_wildcard_gets_its_own_directory(alice, home_root):
    answer = add_site(alice, domains=["*.example.org"])
    assert answer.status_code == 201, answer.json()
    assert answer.json()["root"] == str(home_root / "alice" / "_wildcard.example.org")
    assert (home_root / "alice" / "_wildcard.example.org" / "index.html").is_file()


def test_the_start_page_speaks_the_users_language(alice_client, home_root):
    alice_client.post(reverse("ui:site-add"), {"domains": "a.example.com"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "替换" in (home_root / "alice" / "a.example.com" / "index.html").read_text()


def test_the_form_shows_where_the_site_will_live(alice_client, home_root):
    html = alice_client.get(reverse("ui:site-add")).content.decode()
    # static/js/site_form.js completes the placeholder from data-root-home as the domains are typed.
    home = f"{home_root}/alice"
    assert re.search(rf'data-root-home="{home}"[^>]*placeholder="{home}/"', html)
    assert re.search(r'<textarea name="domains"[^>]*data-proposes-root', html)
    assert '<script src="/static/js/site_form.js" defer></script>' in html
    assert f"inside your home {home_root}/alice" in html


@pytest.mark.parametrize("typed, directory", [
    ("Shop.example.com, www.shop.example.com", "shop.example.com"),
    ("*.example.org", "_wildcard.example.org"),
    ("中文.example.test", "xn--fiq228c.example.test"),
])
def test_a_refused_form_proposes_the_root_of_the_typed_domain(alice_client, home_root, typed,
                                                               directory):
    response = alice_client.post(reverse("ui:site-add"),
                                 {"domains": typed, "proxy_pass": "ftp://nowhere"})
    html = response.content.decode()
    assert response.status_code == 200 and f'placeholder="{home_root}/alice/{directory}"' in html


def test_an_existing_directory_keeps_its_files(alice, home_root):
    (home_root / "alice" / "blog").mkdir(parents=True)
    (home_root / "alice" / "blog" / "index.html").write_text("mine")
    assert add_site(alice, domains=["blog.example.com"], root=str(home_root / "alice" / "blog")).status_code == 201
    assert (home_root / "alice" / "blog" / "index.html").read_text() == "mine"


def test_a_user_cannot_take_a_shared_root_or_another_users_directory(alice, bob, home_root, shared_roots):
    assert add_site(alice, domains=["a.example.com"]).status_code == 201
    alices = home_root / "alice" / "a.example.com"
    for root in ("/var/www", "/var/www/html", str(shared_roots / "www"), str(shared_roots / "www" / "b"),
                 str(alices), str(alices / "public"), str(home_root / "alice"), str(home_root),
                 str(home_root / "bob" / ".." / "alice")):
        answer = add_site(bob, domains=["b.example.net"], root=root)
        assert answer.status_code == 400, root
        assert answer.json()["root"], root
    assert Site.objects.filter(owner=bob).count() == 0
    assert not (shared_roots / "www" / "b").exists()


def test_a_root_inside_the_users_own_home_is_accepted(alice, bob, home_root, shared_roots):
    add_site(alice, domains=["a.example.com"])
    answer = add_site(bob, domains=["b.example.net"], root=str(home_root / "bob" / "sites" / "b"))
    assert answer.status_code == 201, answer.json()
    assert (home_root / "bob" / "sites" / "b" / "index.html").is_file()


def test_a_link_in_the_home_cannot_lead_into_another_home(alice, bob, home_root):
    add_site(alice, domains=["a.example.com"])
    (home_root / "bob").mkdir()
    (home_root / "bob" / "a").symlink_to(home_root / "alice" / "a.example.com")
    answer = add_site(bob, domains=["b.example.net"], root=str(home_root / "bob" / "a"))
    assert answer.status_code == 400 and "symbolic link" in answer.json()["root"][0]


def root_error(answer):
    assert answer.status_code == 400, answer.json()
    return answer.json()["root"][0]


def test_a_missing_root_outside_the_home_is_refused_not_served_as_404(admin_user, shared_roots):
    answer = add_site(admin_user, domains=["admin.example.com"],
                      root=str(shared_roots / "opt" / "app"), confirm_system_root=True)
    assert "does not exist" in root_error(answer)
    assert "Create the directory on the server" in root_error(answer)
    assert not (shared_roots / "opt").exists()


def test_an_administrators_root_in_the_web_roots_is_created_with_a_start_page(admin_user,
                                                                             shared_roots):
    answer = add_site(admin_user, domains=["admin.example.com"],
                      root=str(shared_roots / "www" / "admin"))
    assert answer.status_code == 201, answer.json()
    assert "admin.example.com" in (shared_roots / "www" / "admin" / "index.html").read_text()


def test_an_administrator_serves_a_system_directory_only_when_confirmed(admin_user, shared_roots):
    (shared_roots / "opt" / "app").mkdir(parents=True)
    root = str(shared_roots / "opt" / "app")
    answer = add_site(admin_user, domains=["admin.example.com"], root=root)
    assert "confirm_system_root" in root_error(answer)
    answer = add_site(admin_user, domains=["admin.example.com"], root=root,
                      confirm_system_root=True)
    assert answer.status_code == 201 and answer.json()["root"] == root
    assert not (shared_roots / "opt" / "app" / "index.html").exists()  # left as it is
    # Saved once, the root needs no second confirmation on the next edit.
    edit = api_for(admin_user).patch(f"/api/v1/sites/{answer.json()['id']}/", {"hsts": True},
                                     format="json")
    assert edit.status_code == 200, edit.json()


def test_the_form_asks_an_administrator_to_confirm_a_system_directory(admin_client, shared_roots):
    (shared_roots / "opt").mkdir()
    fields = {"domains": "admin.example.com", "root": str(shared_roots / "opt")}
    empty_form = admin_client.get(reverse("ui:site-add")).content.decode()
    assert 'name="confirm_system_root"' not in empty_form
    response = admin_client.post(reverse("ui:site-add"), fields, HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    assert response.status_code == 200 and 'name="confirm_system_root"' in html
    assert "确认" in html and not Site.objects.exists()
    response = admin_client.post(reverse("ui:site-add"), {**fields, "confirm_system_root": "on"})
    assert response.status_code == 302 and Site.objects.get().root == fields["root"]


def test_a_user_has_no_confirmation_to_give(alice_client):
    html = alice_client.get(reverse("ui:site-add")).content.decode()
    response = alice_client.post(reverse("ui:site-add"), {
        "domains": "a.example.com", "root": "/opt", "confirm_system_root": "on"})
    assert "confirm_system_root" not in html + response.content.decode()
    assert response.status_code == 200 and not Site.objects.exists()


@pytest.mark.parametrize("root", ["/etc", "/etc/nginx", "/proc", "/sys/kernel", "/root", "/boot",
                                  "/dev", "/run", "/", "DATA_DIR", "DATA_DIR/certs",
                                  "DATA_DIR/nginx"])
def test_system_directories_and_the_panels_data_are_refused_even_to_administrators(admin_user,
                                                                                   settings, root):
    root = root.replace("DATA_DIR", str(settings.DATA_DIR))
    answer = add_site(admin_user, domains=["admin.example.com"], root=root,
                      confirm_system_root=True)
    assert "nginx would serve the system's or the panel's own files" in root_error(answer)
    assert not Site.objects.exists()


def test_a_link_to_etc_is_refused_for_everyone(admin_user, alice, home_root, shared_roots):
    (home_root / "alice").mkdir(parents=True)
    (home_root / "alice" / "site").symlink_to("/etc")
    (shared_roots / "www" / "config").symlink_to("/etc")
    answer = add_site(admin_user, domains=["admin.example.com"],
                      root=str(shared_roots / "www" / "config"), confirm_system_root=True)
    assert "leads to /etc through a symbolic link" in root_error(answer)
    answer = add_site(alice, domains=["a.example.com"], root=str(home_root / "alice" / "site"))
    assert "symbolic link" in root_error(answer)
    assert not Site.objects.exists()


def test_the_homes_below_the_panels_data_stay_usable(alice, settings):
    settings.HOME_ROOT = settings.DATA_DIR / "home"  # the default layout
    answer = add_site(alice, domains=["a.example.com"])
    assert answer.status_code == 201, answer.json()
    assert (settings.DATA_DIR / "home" / "alice" / "a.example.com" / "index.html").is_file()


def test_a_grant_makes_a_directory_usable_for_that_user_only(admin_client, alice, bob, shared_roots):
    shared = shared_roots / "www" / "agency"
    response = admin_client.post(reverse("ui:user-edit", args=[alice.pk]),
                                 {"role": "user", "is_active": "on", "granted_roots": f"{shared}\n\n{shared}\n"})
    assert response.status_code == 302
    assert list(RootGrant.objects.values_list("user__username", "path")) == [("alice", str(shared))]
    assert add_site(alice, domains=["a.example.com"], root=str(shared / "a")).status_code == 201
    assert add_site(bob, domains=["b.example.net"], root=str(shared / "b")).status_code == 400
    # The edit page shows the home and the grant; taking it back leaves alice her home only.
    html = admin_client.get(reverse("ui:user-edit", args=[alice.pk])).content.decode()
    assert str(shared) in html and str(homes.home_of(alice)) in html
    admin_client.post(reverse("ui:user-edit", args=[alice.pk]), {"role": "user", "is_active": "on",
                                                                  "granted_roots": ""})
    assert not RootGrant.objects.exists()
    assert add_site(alice, domains=["c.example.com"], root=str(shared / "c")).status_code == 400


@pytest.mark.parametrize("where", ["www", "www/home", "www/home/bob"])
def test_no_grant_takes_in_the_users_homes(admin_client, alice, shared_roots, settings, where):
    # As docker-compose has it: the homes inside an allowed root. Granting that root, the homes'
    # directory or another user's home would hand alice every other user's files.
    settings.HOME_ROOT = shared_roots / "www" / "home"
    response = admin_client.post(reverse("ui:user-edit", args=[alice.pk]),
                                 {"role": "user", "is_active": "on", "granted_roots": str(shared_roots / where)})
    assert response.status_code == 200 and "it holds or lies inside the users" in response.content.decode()
    assert not RootGrant.objects.exists()


@pytest.mark.parametrize("grant, says", [("/etc", "must be inside one of the allowed directories"),
                                         ("relative/dir", "must be an absolute path"),
                                         ("/var/www/../etc", "cannot contain"), ("/var/www/a;b", "not allowed")])
def test_a_grant_must_lie_inside_the_configured_roots(admin_client, alice, shared_roots, grant, says):
    response = admin_client.post(reverse("ui:user-edit", args=[alice.pk]),
                                 {"role": "user", "is_active": "on", "granted_roots": grant})
    assert response.status_code == 200 and says in response.content.decode()
    assert not RootGrant.objects.exists()


def test_the_grant_field_is_translated(admin_client, alice):
    html = admin_client.get(reverse("ui:user-edit", args=[alice.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "授权目录" in html


@pytest.mark.parametrize("username, name", [
    ("alice", "alice"), ("a.b@example.com", "a.b@example.com"), ("x+y-z_1", "x+y-z_1"),
    ("..", None), (".", None), (".hidden", None), ("_u1", None), ("-rf", None), ("名字", None), ("a" * 65, None),
])
def test_a_home_is_named_after_the_user_only_when_that_is_a_plain_file_name(username, name):
    assert homes.directory_name(username, 7) == (name or "_u7")
    assert "/" not in homes.directory_name(username, 7)


def test_a_new_user_gets_a_home(admin_client, home_root):
    admin_client.post(reverse("ui:user-add"), {"username": "carol", "password": "long-enough-pw-7", "role": "user"})
    assert (home_root / "carol").is_dir()


# --- paths from before homes: the upgrade grants them, check_homes lists them


@pytest.fixture
def stored_before_homes(alice, admin_user, shared_roots):
    """Rows as the panel stored them before homes: alice's site and install target in the shared roots."""
    www, install = shared_roots / "www", shared_roots / "install"
    (install / "alice").mkdir()
    site = sites.save_site(Site(owner=alice, domains=["a.example.com"], root=str(www / "a")))
    sites.save_site(Site(owner=admin_user, domains=["admin.example.com"], root="/opt/admin"))
    cert = Certificate.objects.create(owner=alice, domains=["a.example.com"])
    target = InstallTarget.objects.create(owner=alice, certificate=cert, key_path=str(install / "alice" / "k.pem"),
                                          fullchain_path=str(install / "alice" / "f.pem"))
    return site, target


def test_the_upgrade_grants_each_users_paths_in_use(stored_before_homes, alice, alice_client, shared_roots, capsys):
    site, _target = stored_before_homes
    migration = importlib.import_module("panel.migrations.0007_user_homes")
    migration.grant_paths_in_use(apps, None)
    assert sorted(RootGrant.objects.values_list("user__username", "path")) == [
        ("alice", str(shared_roots / "install" / "alice")), ("alice", str(shared_roots / "www" / "a"))]
    out = capsys.readouterr().out
    assert f"granted {shared_roots / 'www' / 'a'} to alice" in out and "admin" not in out
    # Alice's site still saves, with its old root.
    response = alice_client.post(reverse("ui:site-edit", args=[site.pk]), {"domains": "a.example.com",
                                                                           "root": site.root})
    assert response.status_code == 302


def test_check_homes_lists_uncovered_paths_and_grants_them(stored_before_homes, shared_roots, capsys):
    with pytest.raises(SystemExit) as exit_:
        call_command("check_homes")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert f"alice: site #{stored_before_homes[0].pk}: {shared_roots / 'www' / 'a'} NOT COVERED" in out
    assert "k.pem NOT COVERED" in out and "/opt/admin" not in out
    call_command("check_homes", "--grant")
    assert RootGrant.objects.count() == 2
    call_command("check_homes")  # no exit: everything covered
    assert "inside a granted directory" in capsys.readouterr().out


def test_a_user_without_paths_outside_the_home_is_not_listed(alice, capsys):
    add_site(alice, domains=["a.example.com"])
    call_command("check_homes")
    assert "inside their home" in capsys.readouterr().out
