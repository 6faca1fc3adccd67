"""Applying a site's config against a real (private) nginx: stage, test, swap, reload, roll back."""

import time

import pytest
import requests
from django.contrib.auth import get_user_model

from panel.deployment.nginx import apply
from panel.models import Site
from tests.support.ports import wait_for_port
from tests.support.process import ManagedProcess
from tests.support.private_nginx import use_private_nginx


@pytest.fixture
def nginx(settings, tmp_path, monkeypatch):
    use_private_nginx(settings, tmp_path)
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    # Reload at once instead of through the coalescing task: this test has no worker.
    monkeypatch.setattr(apply, "request_reload", apply.reload_now)
    apply.write_private_main_config()
    process = ManagedProcess("nginx", apply.nginx_command("-g", "daemon off;"), tmp_path / "nginx.log").start()
    wait_for_port(settings.NGINX_HTTP_PORT)
    yield settings
    process.stop()


def make_site(tmp_path, name, **fields):
    root = tmp_path / "www" / name
    root.mkdir(parents=True)
    (root / "index.html").write_text(f"this is {name}\n")
    owner, _ = get_user_model().objects.get_or_create(username="owner")
    return Site.objects.create(owner=owner, domains=[name], root=str(root), **fields)


def fetch(settings, host, path="/"):
    return requests.get(f"http://127.0.0.1:{settings.NGINX_HTTP_PORT}{path}", headers={"Host": host}, timeout=5)


def settled(check, timeout=5.0):
    """True once check() holds for ten requests in a row: after a reload, old and new
    nginx workers answer side by side for a moment."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        streak = streak + 1 if check() else 0
        if streak == 10:
            return True
        time.sleep(0.02)
    return False


def serves(settings, host, text):
    return settled(lambda: (r := fetch(settings, host)).status_code == 200 and text in r.text)


@pytest.mark.django_db
def test_a_rejected_site_keeps_its_previous_config_and_others_keep_serving(nginx, tmp_path):
    a = make_site(tmp_path, "a.example.com")
    b = make_site(tmp_path, "b.example.com")
    assert apply.apply_site_config(a).ok and apply.apply_site_config(b).ok
    assert serves(nginx, "a.example.com", "this is a.example.com")
    assert serves(nginx, "b.example.com", "this is b.example.com")
    vhost_b = nginx.NGINX_VHOST_DIR / b.config_name
    before = vhost_b.read_text()

    # A user's upstream whose name does not resolve: nothing checked, nothing for nginx (apply.vetted_upstream).
    b.root, b.proxy_pass = "", "http://no-such-upstream.invalid:9000"
    b.save()
    assert apply.apply_site_config(b).ok is False

    b.refresh_from_db()
    assert b.config_status == Site.ConfigStatus.FAILED
    assert "no-such-upstream.invalid" in b.config_error
    assert vhost_b.read_text() == before
    assert not vhost_b.with_name(vhost_b.name + ".new").exists()
    assert not vhost_b.with_name(vhost_b.name + ".old").exists()
    assert apply.test_config()[0], "the configuration on disk must still pass nginx -t"
    apply.reload_now()
    assert serves(nginx, "a.example.com", "this is a.example.com")
    assert serves(nginx, "b.example.com", "this is b.example.com")


@pytest.mark.django_db
def test_a_new_site_that_nginx_rejects_leaves_no_file_behind(nginx, tmp_path):
    owner = get_user_model().objects.create(username="o")
    site = Site.objects.create(owner=owner, domains=["c.example.com"], proxy_pass="http://nowhere.invalid:1")
    assert apply.apply_site_config(site).ok is False
    assert not (nginx.NGINX_VHOST_DIR / site.config_name).exists()
    site.refresh_from_db()
    assert site.config_status == Site.ConfigStatus.FAILED and "nowhere.invalid" in site.config_error


@pytest.mark.django_db
def test_the_challenge_path_is_answered_over_http_even_with_force_https(nginx, tmp_path):
    site = make_site(tmp_path, "d.example.com", force_https=True)
    other = make_site(tmp_path, "o.example.com")
    assert apply.apply_site_config(site).ok and apply.apply_site_config(other).ok
    names = nginx.ACME_CHALLENGE_DIR / "names"
    tokens = {"tok_en-1": names / "d.example.com", "tok_en-2": names / "o.example.com",
              "tok_en-3": nginx.ACME_CHALLENGE_DIR, "tok_en-4": names / "pending.example.com"}
    for token, folder in tokens.items():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / token).write_text(f"{token}.thumbprint")
    assert settled(lambda: fetch(nginx, "o.example.com", "/.well-known/acme-challenge/tok_en-2").status_code == 200)
    response = fetch(nginx, "d.example.com", "/.well-known/acme-challenge/tok_en-1")
    assert response.status_code == 200 and response.text == "tok_en-1.thumbprint"
    # A site's vhost answers only the tokens presented for the name asked for: never another
    # name's, nor those of the directory itself, which the default server answers for names on no site.
    for token in ("tok_en-2", "tok_en-3", "tok_en-4"):
        assert fetch(nginx, "d.example.com", f"/.well-known/acme-challenge/{token}").status_code == 404
    assert fetch(nginx, "d.example.com", "/.well-known/acme-challenge/names").status_code == 404
    assert fetch(nginx, "unknown.example.com", "/.well-known/acme-challenge/tok_en-3").text == "tok_en-3.thumbprint"
    assert fetch(nginx, "unknown.example.com", "/.well-known/acme-challenge/tok_en-1").status_code == 404
    # A site whose vhost is not live yet: the default server answers its name's folder.
    assert fetch(nginx, "pending.example.com", "/.well-known/acme-challenge/tok_en-4").text == "tok_en-4.thumbprint"


@pytest.mark.django_db
def test_removing_a_site_stops_serving_it(nginx, tmp_path):
    site = make_site(tmp_path, "e.example.com")
    assert apply.apply_site_config(site).ok
    assert serves(nginx, "e.example.com", "this is e.example.com")
    current = apply.layout()
    assert (current.vhost_dir / site.config_name).exists() and current.applied_custom_dir(site).is_dir()
    apply.remove_site_config(site.pk)
    assert settled(lambda: fetch(nginx, "e.example.com").status_code == 404)
    assert not (current.vhost_dir / site.config_name).exists() and not current.applied_custom_dir(site).exists()


class TestReloadCoalescing:
    @pytest.fixture
    def scheduled(self, monkeypatch, settings):
        from django.core.cache import cache

        settings.NGINX_RELOAD_COALESCE_SECONDS = 0.05
        cache.delete_many([apply.RELOAD_PENDING, apply.RELOAD_BUSY_UNTIL, apply.RELOAD_WINDOW, apply.RELOAD_COST])
        calls = []
        monkeypatch.setattr(apply.RELOAD_NGINX, "apply_async", lambda countdown=None: calls.append(countdown))
        return calls

    def test_a_deploy_after_a_quiet_spell_reloads_at_once(self, scheduled):
        apply.request_reload()
        assert scheduled == [None]

    def test_deploys_in_a_burst_share_one_reload(self, scheduled):
        for _ in range(5):
            apply.request_reload()
        assert len(scheduled) == 1

    def test_a_deploy_while_a_reload_is_in_flight_waits_for_it_to_end(self, scheduled):
        from django.core.cache import cache

        apply._record_cost(1.0)  # the last `nginx -t` took 1 s
        cache.set(apply.RELOAD_BUSY_UNTIL, time.time() + 1.0, timeout=60)  # nginx just reloaded
        apply.request_reload()
        assert len(scheduled) == 1 and 0.5 < scheduled[0] <= 1.0


@pytest.mark.django_db
def test_an_apply_measures_what_a_reload_costs(nginx, tmp_path):
    from django.core.cache import cache

    cache.delete(apply.RELOAD_COST)
    assert apply.apply_site_config(make_site(tmp_path, "h.example.com")).ok
    assert 0 < cache.get(apply.RELOAD_COST) < 30  # the reload it ran, in seconds


@pytest.mark.django_db
def test_a_broken_file_elsewhere_is_not_blamed_on_the_site_being_changed(nginx, tmp_path, monkeypatch):
    site = make_site(tmp_path, "f.example.com")
    assert apply.apply_site_config(site).ok
    assert serves(nginx, "f.example.com", "this is f.example.com")  # the reload has finished reading the config
    (nginx.NGINX_VHOST_DIR / "zz-hand-edit.conf").write_text("server { listen 1; bogus_directive secret-upstream; }\n")
    site.hsts = True
    site.save()
    # The site's own config is sound (it is tested alone); the reload shows the rest is not.
    monkeypatch.setattr(apply, "request_reload", lambda: None)
    assert apply.apply_site_config(site).ok is True
    with pytest.raises(apply.NginxError, match="broken outside the panel's sites"):
        apply.reload_now()
    site.refresh_from_db()
    assert site.config_status == Site.ConfigStatus.FAILED
    assert "broken elsewhere" in site.config_error
    assert "secret-upstream" not in site.config_error and "zz-hand-edit" not in site.config_error
    assert serves(nginx, "f.example.com", "this is f.example.com")


@pytest.mark.django_db
def test_an_apply_for_a_deleted_site_writes_nothing(nginx, tmp_path):
    site = make_site(tmp_path, "g.example.com")
    Site.objects.filter(pk=site.pk).delete()
    assert apply.apply_site_config(site).ok is False
    assert not (nginx.NGINX_VHOST_DIR / site.config_name).exists()


@pytest.mark.django_db
def test_a_stored_root_in_a_system_directory_is_taken_down_not_served(nginx, tmp_path, monkeypatch):
    site = make_site(tmp_path, "a.example.com")
    assert apply.apply_site_config(site).ok
    assert serves(nginx, "a.example.com", "this is a.example.com")
    # A root stored before roots were checked, or a directory replaced by a link since.
    root = tmp_path / "www" / "a.example.com"
    (root / "index.html").unlink()
    root.rmdir()
    root.symlink_to("/etc")
    reloads = []
    # Queued, as in production: the fixture's reload at once would wait for the held config lock.
    monkeypatch.setattr(apply, "request_reload", lambda: reloads.append(1))
    applied = apply.apply_site_config(site)
    assert applied.ok is False and "leads to /etc through a symbolic link" in applied.error
    assert reloads
    apply.reload_now()
    site.refresh_from_db()
    assert site.config_status == "failed" and "/etc" in site.config_error
    # The site page says why in the reader's language; the check's own words in the fold-out.
    assert site.config_failure == {"message": apply.ROOT_REFUSED, "params": {"raw": site.config_error}}
    assert not (nginx.NGINX_VHOST_DIR / site.config_name).exists()
    assert settled(lambda: "root:" not in fetch(nginx, "a.example.com", "/passwd").text)
