"""The installed split's root deploy worker does not become a compromised service user's tool:
reload presets run as root only if a root-owned file lists them, values from the database reach
nginx's configuration only if nginx cannot read them as more than one word, and the worker runs
only the tasks routed to the deploy queue.

The first and last parts need root (the worker's own situation): as another user they are skipped.
"""

import logging
import os
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import DataError, connection, transaction
from django.utils import translation

from certs import problems

from certs.models import ReloadPreset
from panel.celery import _root_worker_runs_deploy_tasks_only, app, keep_only_queue, queue_of
from panel.deployment import install_targets
from panel.deployment.nginx import apply, panel_vhost
from panel.models import PanelHttps, Site
from panel.toolkit import privilege

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the deploy worker's situation: root")

# Says who ran it, and fails: its output reaches the target's error.
WHO = ["/bin/sh", "-c", "echo uid=$(id -u) home=$HOME >&2; exit 3"]
WHO_LINE = "/bin/sh -c 'echo uid=$(id -u) home=$HOME >&2; exit 3'  # the reload, as the preset gives it\n"


@pytest.fixture
def installed_split(settings):
    settings.SERVICE_USER = "nobody"
    settings.ROOT_COMMANDS_FILE = None
    return settings


def run(command):
    preset = ReloadPreset.objects.create(name=f"who {ReloadPreset.objects.count()}", command=command, shared=True)
    with pytest.raises(install_targets.InstallError) as raised:
        install_targets._run_preset(preset, key="")
    return raised.value


def root_commands_file(settings, tmp_path, text, mode=0o644):
    path = tmp_path / "root-commands"
    path.write_text(text)
    path.chmod(mode)
    settings.ROOT_COMMANDS_FILE = str(path)
    return path


# --- (a) reload presets


@as_root
@pytest.mark.django_db
def test_a_preset_nobody_listed_runs_as_the_service_user_and_the_failure_says_so(installed_split):
    failure = run(WHO)
    assert failure.failure["message"] == install_targets.AS_SERVICE_USER
    assert failure.failure["params"]["user"] == "nobody"
    assert "uid=65534 home=/nonexistent" in str(failure)
    assert "ran as the user nobody, not as root" in str(failure)
    assert "CERTPANEL_ROOT_COMMANDS_FILE" in str(failure)
    assert "exited with status 3" in str(failure)
    with translation.override("zh-hans"):
        assert "以用户 nobody 而非 root 身份运行" in problems.stored(failure.failure, "").text


@as_root
@pytest.mark.django_db
def test_a_preset_the_root_owned_file_lists_runs_as_root(installed_split, tmp_path):
    root_commands_file(installed_split, tmp_path, "# reloads root may run\n\n/usr/sbin/nginx -s reload\n" + WHO_LINE)
    failure = run(WHO)
    assert failure.failure["message"] == install_targets.EXITED
    assert "uid=0 " in str(failure)
    # The argv must be the same word for word: one more argument is another command.
    assert "uid=65534" in str(run([*WHO, "extra"]))


@as_root
@pytest.mark.django_db
@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_file_others_may_write_is_ignored_with_a_warning(installed_split, tmp_path, caplog, mode):
    path = root_commands_file(installed_split, tmp_path, WHO_LINE, mode=mode)
    with caplog.at_level(logging.WARNING, logger="panel.toolkit.privilege"):
        failure = run(WHO)
    assert failure.failure["message"] == install_targets.AS_SERVICE_USER and "uid=65534" in str(failure)
    assert f"{path} is ignored" in caplog.text


@as_root
@pytest.mark.django_db
def test_a_file_owned_by_another_user_is_ignored(installed_split, tmp_path):
    path = root_commands_file(installed_split, tmp_path, WHO_LINE, mode=0o600)
    os.chown(path, 65534, 65534)
    assert "uid=65534" in str(run(WHO))


@as_root
@pytest.mark.django_db
def test_outside_the_installed_split_presets_run_as_this_process(settings):
    settings.SERVICE_USER = None
    failure = run(WHO)
    assert failure.failure["message"] == install_targets.EXITED and "uid=0 " in str(failure)
    assert not privilege.running_as_root_for_service()


# --- (b) values from the database, checked before nginx's configuration is written


@pytest.fixture
def vhosts(settings, tmp_path, monkeypatch):
    settings.NGINX_VHOST_DIR = tmp_path / "sites"
    settings.ACME_CHALLENGE_DIR = tmp_path / "challenges"
    settings.CERT_DEPLOY_DIR = tmp_path / "certs"
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    settings.PANEL_PORT = 8443
    settings.PANEL_UPSTREAM = "127.0.0.1:8000"
    tested = []
    monkeypatch.setattr(apply, "test_config", lambda: tested.append(1) or (True, ""))
    monkeypatch.setattr(apply, "request_reload", lambda: None)
    return SimpleNamespace(settings=settings, tested=tested)


@pytest.fixture
def admin_site(db, tmp_path):
    """An administrator's site: its upstream is not pinned by the outbound policy."""
    owner = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    root = tmp_path / "www" / "a"
    root.mkdir(parents=True)
    return Site.objects.create(owner=owner, domains=["a.example.com"], primary_domain="a.example.com",
                               root=str(root))


INJECTIONS = [
    ("domains", ["a.example.com;\n    include /etc/shadow"], "server_name"),
    ("domains", ["a.example.com", "b.example.com { }"], "server_name"),
    ("primary_domain", "a.example.com)\nssl_certificate_key /root/key;#", "server_name"),
    ("proxy_pass", "http://127.0.0.1:8000; }\nserver { listen 1", "proxy_pass"),
    ("proxy_pass", "http://127.0.0.1:8000/$request_uri", "proxy_pass"),
    ("root", "/var/www/a;\n    autoindex on", "root"),
    ("root", "/var/www/'a'", "root"),
    ("root", "/var/www/a\\b", "root"),
    ("root", "/var/www/a\x00", "root"),
]


@pytest.mark.parametrize("field, value, directive", INJECTIONS)
def test_a_stored_value_nginx_could_read_as_more_is_never_written(vhosts, admin_site, field, value, directive):
    assert apply.apply_site_config(admin_site).ok
    vhost = vhosts.settings.NGINX_VHOST_DIR / admin_site.config_name
    before = vhost.read_text()
    fields = {field: value} if field != "proxy_pass" else {field: value, "root": ""}
    if "\x00" in str(value) and connection.vendor == "postgresql":
        # PostgreSQL itself refuses NUL in text: the value cannot be stored to reach nginx.
        with pytest.raises(DataError), transaction.atomic():
            Site.objects.filter(pk=admin_site.pk).update(**fields)
        return
    Site.objects.filter(pk=admin_site.pk).update(**fields)  # past validation, as a compromised process would

    outcome = apply.apply_site_config(admin_site)

    assert not outcome.ok and directive in outcome.error
    assert vhost.read_text() == before and len(vhosts.tested) == 1  # nginx never saw it
    assert not vhost.with_name(vhost.name + ".new").exists()
    site = Site.objects.get(pk=admin_site.pk)
    assert site.config_status == "failed"
    assert site.config_failure["message"] == apply.UNSAFE_VALUE
    assert site.config_failure["params"]["field"] == directive
    with translation.override("zh-hans"):
        assert f"网站存储的 {directive} 值无效" in problems.stored(site.config_failure, "").text
    assert "invalid" in apply.preview_site_config(site)  # the site page shows it, does not crash


def test_the_panels_stored_domain_is_checked_too(vhosts, db):
    PanelHttps.objects.update_or_create(pk=1, defaults={"domain": "panel.example.com"})
    assert panel_vhost.install(reload=False) == (True, "")
    path = panel_vhost.config_path(apply.layout())
    before = path.read_text()
    PanelHttps.objects.filter(pk=1).update(domain="panel.example.com;\n    return 200 pwned")

    ok, error = panel_vhost.install()

    assert not ok and "server_name" in error and "invalid" in error
    assert path.read_text() == before and len(vhosts.tested) == 1
    assert not panel_vhost.is_current()


# --- (c) the root worker runs deploy tasks only


def test_queues_are_found_as_celery_routes():
    routes = {"certs.tasks.install_certificate": {"queue": "deploy"}, "certs.tasks.*": {"queue": "acme"},
              "panel.tasks.*": "deploy"}
    assert queue_of("certs.tasks.install_certificate", routes, "default") == "deploy"
    assert queue_of("certs.tasks.advance_order", routes, "default") == "acme"
    assert queue_of("panel.tasks.apply_site", routes, "default") == "deploy"
    assert queue_of("other.task", routes, "default") == "default"


def worker_of_the_real_app():
    app.loader.import_default_modules()
    return SimpleNamespace(app=SimpleNamespace(tasks=dict(app.tasks), conf=app.conf))


@as_root
def test_the_root_worker_unregisters_every_task_not_routed_to_deploy(installed_split):
    worker = worker_of_the_real_app()
    _root_worker_runs_deploy_tasks_only(sender=worker)
    kept = set(worker.app.tasks)
    assert "certs.tasks.advance_order" not in kept and "certs.tasks.send_notification" not in kept
    assert {"panel.tasks.apply_site", "panel.tasks.reload_nginx", "certs.tasks.install_certificate",
            "panel.tasks.worker_heartbeat", "celery.chord_unlock"} <= kept
    assert all(name.startswith("celery.") or queue_of(name, app.conf.task_routes, "default") == "deploy"
               for name in kept)


def test_other_workers_keep_every_task(settings):
    settings.SERVICE_USER = None
    worker = worker_of_the_real_app()
    _root_worker_runs_deploy_tasks_only(sender=worker)
    assert "certs.tasks.advance_order" in worker.app.tasks


def test_an_unrouted_task_goes_to_the_default_queue_and_is_dropped():
    tasks = {"celery.group": 1, "panel.tasks.apply_site": 2, "stray.task": 3}
    assert keep_only_queue(tasks, {"panel.tasks.*": {"queue": "deploy"}}, "default") == ["stray.task"]
    assert tasks == {"celery.group": 1, "panel.tasks.apply_site": 2}
