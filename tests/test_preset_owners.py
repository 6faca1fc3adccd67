"""Reload presets have owners: a user sees and attaches only their own presets and the ones an
administrator offers to everyone; an import's hook belongs to the import's owner, is kept by its
text (never by a path into the temporary directory an archive is unpacked in), and runs for a
user only once an administrator has approved it."""

import io
import tarfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from certs.importers import store
from certs.importers.found import FoundInstall
from certs.models import Certificate, InstallTarget, ReloadPreset
from panel.deployment import install_targets
from panel.models import RootGrant
from panel.security import homes
from tests import test_import_certbot
from tests.test_import_certbot import ConfigDir
from tests.test_import_store import LETSENCRYPT, Home, admin, pki  # noqa: F401 (fixtures)
from tests.test_install_targets import issued_certificate


@pytest.fixture
def root(settings, tmp_path, alice, bob):
    """An install directory granted to alice and bob (users write only in their home and grants)."""
    root = (tmp_path / "install").resolve()
    (root / "site").mkdir(parents=True)
    settings.INSTALL_ROOTS = [root]
    for user in (alice, bob):
        RootGrant.objects.create(user=user, path=str(root))
    return root


def run_target(target):
    return install_targets.run_target(target, homes.install_roots_of(target.owner))


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def attach(user, certificate, root, preset):
    return api_for(user).post("/api/v1/install-targets/", {
        "certificate": certificate.pk, "cert_path": f"{root}/site/{user.username}.pem", "reload_preset": preset.pk},
        format="json")


def listed(user):
    return [preset["name"] for preset in api_for(user).get("/api/v1/reload-presets/").json()["results"]]


def alices_imported_preset(alice, root, pki, command="systemctl reload alices-app"):
    """What an import for alice makes of her old client's reload command."""
    home = Home(pki, directory_url=LETSENCRYPT)
    home.add(["alice.example.com"], challenge="dns-01-manual",
             install=FoundInstall(cert_path=str(root / "site" / "alice-imported.pem"), reload_command=command))
    report = store.import_found(home.found(), alice)
    return report, ReloadPreset.objects.get(command=["/bin/sh", "-c", command])


def test_a_user_neither_sees_nor_attaches_another_users_preset(alice, bob, root, pki, queued):
    _, alices = alices_imported_preset(alice, root, pki)
    assert alices.owner == alice and not alices.shared

    assert listed(alice) == [alices.name] and listed(bob) == []
    assert api_for(bob).get(f"/api/v1/reload-presets/{alices.pk}/").status_code == 404
    refused = attach(bob, issued_certificate(bob, "b.example.com"), root, alices)
    assert refused.status_code == 400 and "does not exist" in refused.json()["reload_preset"][0]
    assert not InstallTarget.objects.filter(owner=bob).exists()
    assert attach(alice, Certificate.objects.get(owner=alice), root, alices).status_code == 201


def test_an_administrators_preset_is_offered_to_users_only_once_shared(admin, bob, admin_client, root, queued):
    preset = ReloadPreset.objects.create(name="nginx", command=["/usr/sbin/nginx", "-s", "reload"], owner=admin)
    certificate = issued_certificate(bob, "b.example.com")
    assert listed(bob) == [] and attach(bob, certificate, root, preset).status_code == 400

    # The administrator offers it on its page.
    response = admin_client.post(reverse("ui:reload-preset-edit", args=[preset.pk]), {
        "name": "nginx", "command": "/usr/sbin/nginx\n-s\nreload", "timeout_seconds": 60, "approved": "on",
        "shared": "on"})
    assert response.status_code == 302
    assert listed(bob) == ["nginx"]
    assert attach(bob, certificate, root, preset).status_code == 201


def test_only_an_administrator_shares_and_only_an_administrators_preset(admin, alice, bob, root, pki, queued):
    _, alices = alices_imported_preset(alice, root, pki)
    as_alice = api_for(alice).patch(f"/api/v1/reload-presets/{alices.pk}/", {"shared": True}, format="json")
    assert as_alice.status_code == 403
    as_admin = api_for(admin).patch(f"/api/v1/reload-presets/{alices.pk}/", {"shared": True}, format="json")
    assert as_admin.status_code == 400
    assert "Only an administrator's preset can be offered to every user" in as_admin.json()["shared"][0]
    assert listed(bob) == []
    made = api_for(admin).post("/api/v1/reload-presets/", {"name": "reload", "command": ["/bin/true"],
                                                          "shared": True}, format="json")
    assert made.status_code == 201 and made.json()["owner"] == "root"
    assert listed(bob) == ["reload"]


def test_an_import_reuses_only_a_preset_its_owner_may_pick(alice, bob, root, pki, queued):
    _, alices = alices_imported_preset(alice, root, pki, command="systemctl reload app")
    home = Home(pki, directory_url=LETSENCRYPT)
    home.add(["bob.example.com"], challenge="dns-01-manual",
             install=FoundInstall(cert_path=str(root / "site" / "bob.pem"), reload_command="systemctl reload app"))

    store.import_found(home.found(), bob)

    bobs = InstallTarget.objects.get(owner=bob).reload_preset
    assert bobs != alices and bobs.owner == bob


def test_a_users_imported_command_runs_only_once_an_administrator_approves_it(alice, admin_client, root, pki,
                                                                            queued):
    marker = root / "site" / "reloaded"
    report, preset = alices_imported_preset(alice, root, pki, command=f"touch {marker}")
    assert not preset.approved
    assert any("runs only once an administrator has approved it" in message
               for item in report.items if item.kind == store.RELOAD_PRESET for message in item.messages)
    target = InstallTarget.objects.get(owner=alice)

    assert run_target(target) is False
    target.refresh_from_db()
    assert not marker.exists() and (root / "site" / "alice-imported.pem").exists()  # the files are installed
    assert "does not run until an administrator approves it" in target.last_error
    assert "Awaiting your approval" in admin_client.get(reverse("ui:reload-preset-list")).content.decode()

    admin_client.post(reverse("ui:reload-preset-edit", args=[preset.pk]), {
        "name": preset.name, "command": f"/bin/sh\n-c\ntouch {marker}", "timeout_seconds": 60, "approved": "on"})
    assert run_target(InstallTarget.objects.get(pk=target.pk)) is True
    assert marker.exists()


def test_an_uploaded_certbot_deploy_hook_is_kept_by_its_text_and_runs_after_the_upload_is_gone(
        admin_client, root, monkeypatch, tmp_path, settings):
    """The page unpacks an archive into a temporary directory it removes afterwards: the preset must
    not name a script in there (anyone able to write that path later would choose what runs)."""
    origin = root / "letsencrypt"  # where the files were on the old server: here, where they are installed
    monkeypatch.setattr(test_import_certbot, "ORIGIN", str(origin))
    marker = root / "site" / "deployed"
    certbot_dir = ConfigDir(tmp_path / "letsencrypt")
    webroot = (tmp_path / "www").resolve()
    webroot.mkdir()
    settings.WEBROOT_ROOTS = [webroot]
    certbot_dir.webroot("shop", ["shop.example.test"], root=str(webroot))
    certbot_dir.hook("deploy", "reload.sh", f'#!/bin/sh\necho "$RENEWED_DOMAINS" > {marker}\n')
    (origin / "live" / "shop").mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(certbot_dir.root, arcname="letsencrypt")

    response = admin_client.post(reverse("ui:import"), {
        "archive": SimpleUploadedFile("le.tar.gz", buffer.getvalue()), "client": "",
        "owner": admin_client.user.pk, "action": "import"})

    assert "Certificates: 1 created" in response.content.decode()
    preset = InstallTarget.objects.get().reload_preset
    assert preset.name == "Imported: certbot: deploy/reload.sh"
    assert "certpanel-import-" not in " ".join(preset.command)
    assert f'echo "$RENEWED_DOMAINS" > {marker}' in preset.command[2]
    assert run_target(InstallTarget.objects.get()) is True
    assert marker.read_text() == "shop.example.test\n"


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    client.user = admin
    return client


@pytest.mark.django_db(transaction=True)
def test_existing_presets_keep_running_and_an_imported_command_goes_to_its_user():
    """Migration 0010: an administrator's argv preset stays offered to everyone; a `/bin/sh -c`
    preset (what imports made) goes to the one user whose targets use it and is offered to nobody
    else; every install target keeps its preset, and every preset stays approved but one that ran a
    hook out of a deleted upload directory."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("certs", "0009_install_target_queued_at")], [("certs", "0010_preset_owners")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    User = old.get_model("auth", "User")
    alice, bob = (User.objects.create(username=name) for name in ("alice", "bob"))
    Preset, Target = old.get_model("certs", "ReloadPreset"), old.get_model("certs", "InstallTarget")
    nginx = Preset.objects.create(name="nginx", command=["/usr/sbin/nginx", "-s", "reload"])
    imported = Preset.objects.create(name="Imported: x", command=["/bin/sh", "-c", "x"])
    both = Preset.objects.create(name="Imported: y", command=["/bin/sh", "-c", "y"])
    from_upload = Preset.objects.create(name="Imported: certbot: deploy/x.sh",
                                        command=["/bin/sh", "-c", "/tmp/certpanel-import-ab12/le/renewal-hooks/deploy/x.sh"])
    Certificate = old.get_model("certs", "Certificate")
    for number, (owner, preset) in enumerate([(alice, imported), (alice, both), (bob, both), (bob, nginx),
                                              (bob, from_upload)]):
        cert = Certificate.objects.create(owner=owner, domains=[f"{number}.example.com"])
        Target.objects.create(owner=owner, certificate=cert, cert_path=f"/x/{number}", reload_preset=preset)

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # whatever other helpers add after it

    rows = {p.name: (p.owner.username if p.owner else None, p.shared, p.approved) for p in ReloadPreset.objects.all()}
    assert rows == {"nginx": (None, True, True), "Imported: x": ("alice", False, True),
                    "Imported: y": (None, False, True),
                    # its script's directory is gone: whoever made it again would choose what runs
                    "Imported: certbot: deploy/x.sh": ("bob", False, False)}
    assert [t.reload_preset.name for t in InstallTarget.objects.order_by("cert_path")] == [
        "Imported: x", "Imported: y", "Imported: y", "nginx", "Imported: certbot: deploy/x.sh"]
    bob_user = get_user_model().objects.get(username="bob")
    assert listed(bob_user) == ["Imported: certbot: deploy/x.sh", "nginx"]  # his own, and the shared one
