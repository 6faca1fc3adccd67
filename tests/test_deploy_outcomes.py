"""What the deploy task makes of nginx's outcome (panel.deployment.dispatch), against a real
private nginx: the certificate shows whether nginx serves its version, the order's log says so,
the owner hears of a failure once, and files that cannot be written are retried."""

from contextlib import contextmanager

import pytest
from django.utils import translation

from certs import notifications, problems
from certs.models import Certificate, OrderLogEntry
from panel.deployment import dispatch, tasks
from panel.deployment.nginx import apply
from panel.models import Site
from tests.test_nginx_apply import make_site, nginx  # noqa: F401 (nginx: a fixture)
from tests.test_versions import make_certificate


@pytest.fixture
def told(db, monkeypatch):
    sent = []
    monkeypatch.setattr(notifications, "notify", lambda owner_id, event, subject, body: sent.append((event, subject)))
    return sent


def log_of(certificate):
    return list(OrderLogEntry.objects.filter(order__certificate=certificate).values_list("message", flat=True))


def test_files_nginx_cannot_get_are_shown_retried_and_cleared_once_written(nginx, tmp_path, monkeypatch, told):
    site = make_site(tmp_path, "files.example.com")
    certificate = make_certificate(site.owner, ["files.example.com"], site=site)
    written = apply.stage_served_certificate

    def disk_full(current, site, version):
        raise apply.CertificateFilesNotWritten("cannot write the certificate files: No space left on device")

    monkeypatch.setattr(apply, "stage_served_certificate", disk_full)
    for attempt in range(2):  # the task's retry meets the same full disk
        with pytest.raises(apply.CertificateFilesNotWritten):
            tasks.apply_site.run(site.pk)
    certificate.refresh_from_db()
    assert certificate.last_error.startswith("Not yet served by nginx: ")
    assert certificate.last_error.endswith(
        "\ncannot write the certificate files: No space left on device")
    with translation.override("zh-hans"):  # the reader's language, the disk's own words apart
        shown = problems.stored(certificate.last_failure, certificate.last_error)
        assert "nginx 尚未使用此证书" in shown.text and shown.raw.endswith("No space left on device")
    assert Site.objects.get(pk=site.pk).config_status == "failed"
    assert log_of(certificate).count("nginx cannot serve this certificate yet, retrying: %(error)s") == 1
    assert told == [("config_rejected", "nginx cannot serve the new certificate of files.example.com")] * 2

    monkeypatch.setattr(apply, "stage_served_certificate", written)
    assert dispatch.deploy_site(site.pk) is True
    certificate.refresh_from_db()
    assert certificate.last_error == "" and certificate.last_failure is None
    assert Site.objects.get(pk=site.pk).config_status == "applied"
    assert "Certificate installed in nginx" in log_of(certificate)


def test_a_rejected_config_is_told_under_the_names_it_was_applied_with(nginx, tmp_path, monkeypatch, told):
    site = make_site(tmp_path, "before.example.com")
    lock = apply.config_lock

    @contextmanager
    def edited_while_waiting_for_the_lock():
        Site.objects.filter(pk=site.pk).update(domains=["after.example.com"], primary_domain="after.example.com",
                                               root="", proxy_pass="http://nowhere.invalid:1")
        with lock():
            yield

    monkeypatch.setattr(apply, "config_lock", edited_while_waiting_for_the_lock)
    assert dispatch.deploy_site(site.pk) is False

    assert told == [("config_rejected", "nginx rejected the config of after.example.com")]
    assert Certificate.objects.count() == 0


def test_a_deleted_site_deploys_nothing_and_tells_no_one(nginx, tmp_path, told):
    site = make_site(tmp_path, "gone.example.com")
    Site.objects.filter(pk=site.pk).delete()
    assert dispatch.deploy_site(site.pk) is False
    assert told == []
