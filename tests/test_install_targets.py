"""Install targets (acme.sh --install-cert): approved paths only, files written whole with
the chosen modes, an administrator's preset run after, failures recorded and reported."""

import datetime
import stat
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from certs import notifications, orders
from certs.models import AcmeAccount, Certificate, CertificateVersion, InstallTarget, Order, ReloadPreset
from panel.deployment import dispatch, tasks
from panel.models import RootGrant


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_chain(domain, key=None):
    """(leaf key PEM, leaf PEM, intermediate PEM) for `domain`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = (x509.CertificateBuilder().subject_name(_name("Test Intermediate")).issuer_name(
        _name("Test Intermediate")).public_key(ca_key.public_key()).serial_number(1).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365)).sign(ca_key, hashes.SHA256()))
    key = key or ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(domain)).issuer_name(intermediate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, leaf.public_bytes(serialization.Encoding.PEM).decode(), \
        intermediate.public_bytes(serialization.Encoding.PEM).decode()


def issued_certificate(owner, domain="a.example.com"):
    account = AcmeAccount.objects.create(owner=owner, directory_url="https://ca.example/dir", account_key="unused",
                                         account_url=f"https://ca.example/acct/{owner.pk}")
    cert = Certificate.objects.create(owner=owner, account=account, domains=[domain], status="valid")
    key_pem, leaf_pem, intermediate_pem = make_chain(domain)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert.current_version = CertificateVersion.objects.create(
        certificate=cert, cert_pem=leaf_pem, chain_pem=leaf_pem + intermediate_pem, private_key=key_pem,
        serial="1", issuer="CN=Test Intermediate", not_before=now, not_after=now + datetime.timedelta(days=90))
    cert.save()
    return cert


@pytest.fixture
def root(settings, tmp_path, alice):
    """An install directory an administrator granted alice (users write only in their home and grants)."""
    root = (tmp_path / "install").resolve()
    (root / "site").mkdir(parents=True)
    settings.INSTALL_ROOTS = [root]
    RootGrant.objects.create(user=alice, path=str(root))
    return root


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def bob_api(bob):
    client = APIClient()
    client.force_authenticate(bob)
    return client


@pytest.fixture
def cert(alice):
    return issued_certificate(alice)


@pytest.fixture
def queued_installs():
    with mock.patch("panel.deployment.dispatch.INSTALL_CERTIFICATE.delay") as delay:
        yield delay


@pytest.fixture
def reports(monkeypatch):
    """What would reach the owner's notification channels."""
    sent = []
    monkeypatch.setattr(notifications, "notify",
                        lambda owner_id, event, subject, body: sent.append((owner_id, event, subject, body)))
    return sent


def four_paths(root):
    return {"key_path": f"{root}/site/privkey.pem", "cert_path": f"{root}/site/cert.pem",
            "chain_path": f"{root}/site/chain.pem", "fullchain_path": f"{root}/site/fullchain.pem"}


def create_target(client, cert, **fields):
    return client.post("/api/v1/install-targets/", {"certificate": cert.pk, **fields}, format="json")


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("path", ["/etc/ssl/private/key.pem", "{root}/../key.pem", "{root}/site/../../key.pem",
                                  "site/key.pem", "{root}2/key.pem", "{root}/site/a\nb.pem", "{root}/site/a b.pem",
                                  "{root}/site/key.pem;reboot", "{root}/missing-dir/key.pem", "{root}/site",
                                  "{root}", "{root}/site/a\x00.pem"])
def test_it_refuses_paths_outside_the_install_roots(api, cert, root, queued_installs, path):
    response = create_target(api, cert, key_path=path.format(root=root))
    assert response.status_code == 400
    assert response.json()["key_path"], response.json()
    assert InstallTarget.objects.count() == 0


def test_it_refuses_a_symlink_that_leads_out_of_the_roots(api, cert, root, tmp_path, queued_installs):
    (tmp_path / "elsewhere").mkdir()
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    response = create_target(api, cert, fullchain_path=f"{root}/escape/fullchain.pem")
    assert response.status_code == 400
    assert "symbolic link" in response.json()["fullchain_path"][0]
    assert InstallTarget.objects.count() == 0


def test_it_wants_at_least_one_path(api, cert, root):
    response = create_target(api, cert)
    assert response.status_code == 400
    assert response.json()["non_field_errors"]


def test_a_path_belongs_to_one_target_only(api, bob_api, bob, cert, root, queued_installs):
    assert create_target(api, cert, fullchain_path=f"{root}/site/fullchain.pem").status_code == 201
    RootGrant.objects.create(user=bob, path=str(root))  # both may write here, but not the same file
    bobs = issued_certificate(bob, "b.example.com")
    response = create_target(bob_api, bobs, key_path=f"{root}/site/fullchain.pem")
    assert response.status_code == 400
    assert response.json()["key_path"] == ["Another install target already writes this path."]
    twice = create_target(api, cert, cert_path=f"{root}/site/c.pem", chain_path=f"{root}/site/c.pem")
    assert twice.status_code == 400
    assert InstallTarget.objects.count() == 1


def test_a_world_readable_key_is_refused(api, cert, root):
    response = create_target(api, cert, key_path=f"{root}/site/k.pem", key_mode="0644")
    assert response.status_code == 400
    assert response.json()["key_mode"]
    assert create_target(api, cert, key_path=f"{root}/site/k.pem", key_mode="999").status_code == 400
    assert InstallTarget.objects.count() == 0


def test_a_new_target_installs_at_once(api, cert, root, queued_installs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = create_target(api, cert, **four_paths(root))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["key_mode"], body["cert_mode"], body["last_status"]) == ("0600", "0644", "never")
    queued_installs.assert_called_once_with(cert.pk, body["id"])


def test_running_a_target_writes_the_files_and_runs_the_preset(api, cert, root, tmp_path, queued_installs):
    marker = tmp_path / "reloaded"
    preset = ReloadPreset.objects.create(name="touch", command=["/usr/bin/touch", str(marker)], shared=True)
    response = create_target(api, cert, reload_preset=preset.pk, cert_mode="0640", **four_paths(root))
    assert response.status_code == 201, response.json()

    assert tasks.install_certificate(cert.pk) is None  # the Celery task, run here

    version = cert.current_version
    leaf, intermediate = version.chain_pem.split("-----END CERTIFICATE-----\n")[:2]
    site = root / "site"
    assert (site / "privkey.pem").read_text() == version.private_key
    assert (site / "cert.pem").read_text() == version.cert_pem
    assert (site / "chain.pem").read_text() == intermediate + "-----END CERTIFICATE-----\n"
    assert (site / "fullchain.pem").read_text() == version.chain_pem
    assert "BEGIN CERTIFICATE" in intermediate and intermediate not in leaf
    assert mode(site / "privkey.pem") == 0o600
    assert mode(site / "cert.pem") == mode(site / "chain.pem") == mode(site / "fullchain.pem") == 0o640
    assert marker.exists()
    assert sorted(p.name for p in site.iterdir()) == ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"]
    shown = api.get(f"/api/v1/install-targets/{response.json()['id']}/").json()
    assert shown["last_status"] == "ok" and shown["last_error"] == "" and shown["last_run_at"]


def test_a_renewal_replaces_the_installed_files(api, cert, root, queued_installs):
    create_target(api, cert, fullchain_path=f"{root}/site/fullchain.pem")
    dispatch.install_certificate(cert.pk)
    first = (root / "site" / "fullchain.pem").read_text()
    renewed = issued_certificate(cert.owner, "a.example.com").current_version
    CertificateVersion.objects.filter(pk=renewed.pk).update(certificate=cert)
    Certificate.objects.filter(pk=cert.pk).update(current_version=renewed)
    dispatch.install_certificate(cert.pk)
    assert (root / "site" / "fullchain.pem").read_text() == renewed.chain_pem != first


def test_a_failing_preset_is_recorded_and_reported(api, alice, cert, root, queued_installs, reports):
    preset = ReloadPreset.objects.create(name="false", command=["/bin/false"], shared=True)
    target_id = create_target(api, cert, reload_preset=preset.pk, **four_paths(root)).json()["id"]

    assert dispatch.install_certificate(cert.pk) == [target_id]

    target = InstallTarget.objects.get(pk=target_id)
    assert target.last_status == "failed"
    assert "exited with status 1" in target.last_error and "false" in target.last_error
    assert (root / "site" / "fullchain.pem").exists()  # the files were written before the preset ran
    [(owner_id, event, subject, body)] = reports
    assert (owner_id, event) == (alice.pk, "renewal_failed")
    assert "a.example.com" in subject and target.last_error in body


def test_a_failure_reads_in_the_readers_language_then_the_programs_words(api, cert, root,
                                                                       queued_installs, reports):
    preset = ReloadPreset.objects.create(name="noisy", shared=True,
                                         command=["/bin/sh", "-c", "echo broken >&2; exit 2"])
    target_id = create_target(api, cert, reload_preset=preset.pk, **four_paths(root)).json()["id"]
    dispatch.install_certificate(cert.pk)
    url = f"/api/v1/install-targets/{target_id}/"
    chinese = api.get(url, headers={"accept-language": "zh-hans"}).json()
    english = api.get(url, headers={"accept-language": "en"}).json()
    assert chinese["last_error"] == "重载预设“noisy”以状态 2 退出。\nbroken"
    assert english["last_error"] == "The reload preset “noisy” exited with status 2.\nbroken"


def test_a_preset_that_does_not_finish_is_stopped(api, cert, root, queued_installs, reports):
    preset = ReloadPreset.objects.create(name="slow", command=["/bin/sleep", "30"], timeout_seconds=1, shared=True)
    create_target(api, cert, reload_preset=preset.pk, cert_path=f"{root}/site/cert.pem")
    dispatch.install_certificate(cert.pk)
    target = InstallTarget.objects.get()
    assert target.last_status == "failed" and "did not finish within 1s" in target.last_error


def test_a_directory_gone_since_is_a_failure_and_the_preset_does_not_run(api, cert, root, tmp_path,
                                                                          queued_installs, reports):
    marker = tmp_path / "reloaded"
    preset = ReloadPreset.objects.create(name="touch", command=["/usr/bin/touch", str(marker)], shared=True)
    create_target(api, cert, reload_preset=preset.pk, cert_path=f"{root}/site/cert.pem")
    (root / "site").rmdir()
    dispatch.install_certificate(cert.pk)
    target = InstallTarget.objects.get()
    assert target.last_status == "failed" and "does not exist" in target.last_error
    assert not marker.exists()


def test_the_key_never_shows_in_errors_or_responses(api, cert, root, queued_installs, reports):
    key_path = f"{root}/site/privkey.pem"
    leak = ReloadPreset.objects.create(name="leaky", command=["/bin/sh", "-c", f"cat {key_path} >&2; exit 3"],
                                       shared=True)
    target_id = create_target(api, cert, reload_preset=leak.pk, key_path=key_path).json()["id"]
    dispatch.install_certificate(cert.pk)

    key = cert.current_version.private_key
    key_lines = [line for line in key.splitlines() if not line.startswith("-----")]
    target = InstallTarget.objects.get(pk=target_id)
    assert target.last_status == "failed" and "status 3" in target.last_error
    for text in (target.last_error, api.get(f"/api/v1/install-targets/{target_id}/").content.decode(),
                 api.get("/api/v1/install-targets/").content.decode(), reports[0][3]):
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in key_lines)


def test_another_users_target_is_404(api, bob_api, cert, root, queued_installs):
    target_id = create_target(api, cert, cert_path=f"{root}/site/cert.pem").json()["id"]
    url = f"/api/v1/install-targets/{target_id}/"
    assert bob_api.get(url).status_code == 404
    assert bob_api.patch(url, {"cert_path": f"{root}/site/x.pem"}, format="json").status_code == 404
    assert bob_api.post(url + "run/").status_code == 404
    assert bob_api.delete(url).status_code == 404
    assert bob_api.get("/api/v1/install-targets/").json()["results"] == []
    assert InstallTarget.objects.get().cert_path == f"{root}/site/cert.pem"
    queued_installs.assert_not_called()


def test_a_target_needs_the_users_own_certificate(bob_api, cert, root):
    response = create_target(bob_api, cert, cert_path=f"{root}/site/cert.pem")
    assert response.status_code == 400
    assert response.json()["certificate"]
    assert InstallTarget.objects.count() == 0


def test_run_queues_the_target(api, cert, root, queued_installs, django_capture_on_commit_callbacks):
    target_id = create_target(api, cert, cert_path=f"{root}/site/cert.pem").json()["id"]
    queued_installs.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/install-targets/{target_id}/run/")
    assert response.status_code == 202
    queued_installs.assert_called_once_with(cert.pk, target_id)


def test_run_waits_for_an_issued_certificate(api, alice, cert, root, queued_installs):
    pending = Certificate.objects.create(owner=alice, account=cert.account, domains=["p.example.com"])
    target_id = create_target(api, pending, cert_path=f"{root}/site/cert.pem").json()["id"]
    assert api.post(f"/api/v1/install-targets/{target_id}/run/").status_code == 409
    queued_installs.assert_not_called()


def test_users_pick_presets_and_cannot_make_them(api, root, cert):
    ReloadPreset.objects.create(name="nginx", command=["/usr/bin/systemctl", "reload", "nginx"], shared=True)
    listed = api.get("/api/v1/reload-presets/").json()["results"]
    assert [(p["name"], p["command"]) for p in listed] == [("nginx", ["/usr/bin/systemctl", "reload", "nginx"])]
    made = api.post("/api/v1/reload-presets/", {"name": "mine", "command": ["/bin/rm", "-rf", "/"]}, format="json")
    assert made.status_code == 403 and not ReloadPreset.objects.filter(name="mine").exists()  # admins only
    bad = create_target(api, cert, cert_path=f"{root}/site/cert.pem", reload_preset=99999)
    assert bad.status_code == 400 and bad.json()["reload_preset"]


@pytest.mark.parametrize("command", ["systemctl reload nginx", [], ["systemctl", "reload", "nginx"], [""], [1]])
def test_a_preset_is_an_argv_list_with_an_absolute_program(db, command):
    with pytest.raises(ValidationError):
        ReloadPreset(name="x", command=command).full_clean()


def test_issuing_queues_the_certificates_install_targets(alice, cert, root, django_capture_on_commit_callbacks):
    InstallTarget.objects.create(owner=alice, certificate=cert, cert_path=f"{root}/site/cert.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem, leaf_pem, intermediate_pem = make_chain("a.example.com", key)
    order = Order.objects.create(owner=alice, certificate=cert, status=Order.Status.FINALIZING, private_key=key_pem)
    with mock.patch("panel.deployment.dispatch.INSTALL_CERTIFICATE.delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        orders._store_version(order, leaf_pem + intermediate_pem)
    delay.assert_called_once_with(cert.pk)


def test_an_install_lost_with_its_task_is_queued_again_once(alice, cert, root, settings,
                                                           django_capture_on_commit_callbacks):
    """Redis restarted without persistence loses queued installs: one queued ORDER_STALL_SECONDS
    ago and not run since is queued again; one that ran, or was queued just now, is not."""
    settings.ORDER_STALL_SECONDS = 60
    lost = InstallTarget.objects.create(owner=alice, certificate=cert, cert_path=f"{root}/site/lost.pem")
    ran = InstallTarget.objects.create(owner=alice, certificate=cert, cert_path=f"{root}/site/ran.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem, leaf_pem, intermediate_pem = make_chain("a.example.com", key)
    order = Order.objects.create(owner=alice, certificate=cert, status=Order.Status.FINALIZING, private_key=key_pem)
    with mock.patch("panel.deployment.dispatch.INSTALL_CERTIFICATE.delay"), django_capture_on_commit_callbacks(execute=True):
        orders._store_version(order, leaf_pem + intermediate_pem)  # its task is lost
    assert InstallTarget.objects.filter(queued_at__isnull=False).count() == 2
    long_ago = timezone.now() - datetime.timedelta(seconds=61)
    InstallTarget.objects.update(queued_at=long_ago)
    InstallTarget.objects.filter(pk=ran.pk).update(last_run_at=timezone.now())
    untouched = InstallTarget.objects.create(owner=alice, certificate=cert, cert_path=f"{root}/site/new.pem")

    with mock.patch("panel.deployment.dispatch.INSTALL_CERTIFICATE.delay") as delay:
        assert dispatch.resume_stalled_installs() == 1
        assert dispatch.resume_stalled_installs() == 0  # queued again just now: not at every sweep
    delay.assert_called_once_with(cert.pk, lost.pk)
    assert InstallTarget.objects.get(pk=untouched.pk).queued_at is None


def test_issuing_without_install_targets_queues_nothing(alice, cert, django_capture_on_commit_callbacks):
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem, leaf_pem, intermediate_pem = make_chain("a.example.com", key)
    order = Order.objects.create(owner=alice, certificate=cert, status=Order.Status.FINALIZING, private_key=key_pem)
    with mock.patch("panel.deployment.dispatch.INSTALL_CERTIFICATE.delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        orders._store_version(order, leaf_pem + intermediate_pem)
    delay.assert_not_called()


def test_each_failure_is_reported_before_the_next_target_runs(api, alice, cert, root, queued_installs, monkeypatch):
    failing = ReloadPreset.objects.create(name="false", command=["/bin/false"], shared=True)
    first = create_target(api, cert, reload_preset=failing.pk, cert_path=f"{root}/site/first.pem").json()["id"]
    second = create_target(api, cert, cert_path=f"{root}/site/second.pem").json()["id"]
    second_run_when_told = []
    monkeypatch.setattr(notifications, "notify", lambda owner_id, event, subject, body: second_run_when_told.append(
        InstallTarget.objects.get(pk=second).last_run_at))

    assert dispatch.install_certificate(cert.pk) == [first]

    assert second_run_when_told == [None]  # told of the first before the second ran
    assert InstallTarget.objects.get(pk=second).last_status == "ok"


# --- a home per user: a user's targets write only in their own home and the directories granted to them


def test_a_user_writes_in_their_own_home_without_any_grant(api, alice, cert, home_root, queued_installs,
                                                           django_capture_on_commit_callbacks):
    path = home_root / "alice" / "fullchain.pem"
    with django_capture_on_commit_callbacks(execute=True):
        response = create_target(api, cert, fullchain_path=str(path))
    assert response.status_code == 201, response.json()
    tasks.install_certificate(cert.pk)
    assert path.read_text() == cert.current_version.chain_pem


def test_a_user_cannot_write_into_another_users_home(api, bob_api, bob, cert, home_root, settings,
                                                    queued_installs):
    settings.INSTALL_ROOTS = [home_root]  # one install directory for everyone, as before homes
    assert create_target(api, cert, fullchain_path=str(home_root / "alice" / "fullchain.pem")).status_code == 201
    bobs = issued_certificate(bob, "b.example.com")
    for path in (home_root / "alice" / "key.pem", home_root / "alice" / "fullchain.pem", home_root / "x.pem"):
        response = create_target(bob_api, bobs, key_path=str(path))
        assert response.status_code == 400
        assert "must be inside one of the allowed directories" in response.json()["key_path"][0]
        assert str(home_root / "bob") in response.json()["key_path"][0]
    assert not (home_root / "alice" / "key.pem").exists()
    assert InstallTarget.objects.filter(owner=bob).count() == 0


def test_the_install_roots_are_for_administrators_and_grants(api, bob_api, bob, admin_user, cert, root,
                                                             queued_installs):
    # root is granted to alice only: bob may not write there, an administrator may.
    bobs = issued_certificate(bob, "b.example.com")
    response = create_target(bob_api, bobs, key_path=f"{root}/site/bob.pem")
    assert response.status_code == 400 and "allowed directories" in response.json()["key_path"][0]
    admin_api = APIClient()
    admin_api.force_authenticate(admin_user)
    admins = issued_certificate(admin_user, "admin.example.com")
    assert create_target(admin_api, admins, key_path=f"{root}/site/admin.pem").status_code == 201


def test_a_grant_taken_back_stops_the_next_install(api, alice, cert, root, queued_installs, reports):
    create_target(api, cert, fullchain_path=f"{root}/site/fullchain.pem")
    RootGrant.objects.filter(user=alice).delete()
    dispatch.install_certificate(cert.pk)
    target = InstallTarget.objects.get()
    assert target.last_status == "failed" and "allowed directories" in target.last_error
    assert not (root / "site" / "fullchain.pem").exists()
