"""The deployment wing's one door: what the rest of the panel calls to put a certificate, or a
site's config, where it belongs, and what the deploy tasks run.

Each kind of destination is a module of its own beside this one, with one entry point that
does the work and returns its outcome: `nginx.apply` (this server's nginx: a site's vhost and
certificate files) and `install_targets` (files written where an administrator allowed, then
a reload preset). This module queues them, records what they report on the certificate and
tells the owner, so a new kind of destination is one new module plus its line here, and the
order state machine never changes for it.
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from certs import notifications
from certs.models import InstallTarget
from panel.deployment import install_targets, outcome
from panel.deployment.nginx import apply, panel_vhost
from panel.models import PanelHttps, Site
from panel.security import homes
from panel.toolkit import task_queue
from panel.toolkit.task_queue import NamedTask

log = logging.getLogger(__name__)

# The deploy tasks (panel.deployment.tasks), by their registered names.
APPLY_SITE = NamedTask("panel.tasks.apply_site")
REMOVE_SITE = NamedTask("panel.tasks.remove_site")
INSTALL_CERTIFICATE = NamedTask("certs.tasks.install_certificate")
APPLY_PANEL_VHOST = NamedTask("panel.tasks.apply_panel_vhost")


def put_in_service(cert, install_targets=True):
    """Call inside the transaction that made a new version current (issued or uploaded): once
    it commits, the certificate's site is re-applied so nginx serves it, and its install
    targets get it (acme.sh --install-cert). install_targets=False: the files are already
    there (an import from another ACME client, which installed them itself)."""
    if cert.site_id:
        queue_site_apply(cert.site_id)
    if PanelHttps.objects.filter(pk=1, certificate_id=cert.pk).exists():
        queue_panel_vhost()  # the panel's own certificate: nginx serves the panel with it
    if install_targets:
        queue_installs(cert.pk)


# --- this server's nginx


def queue_site_apply(site_id):
    """Inside a transaction: the site waits for its nginx config, applied once this commits.
    A task the broker loses (or that cannot be queued) is queued again by resume_stalled_applies."""
    Site.objects.filter(pk=site_id).update(config_status=Site.ConfigStatus.PENDING, config_queued_at=timezone.now())
    transaction.on_commit(lambda: APPLY_SITE.delay(site_id), robust=True)


def queue_site_removal(site_id):
    """Inside the transaction that deletes the site: its nginx files go once this commits."""
    transaction.on_commit(lambda: REMOVE_SITE.delay(site_id))


def resume_stalled_applies():
    """Queue again the apply of every site still pending ORDER_STALL_SECONDS after it was queued."""
    now = timezone.now()
    queued_long_ago = Q(config_queued_at__isnull=True) | Q(
        config_queued_at__lt=now - datetime.timedelta(seconds=settings.ORDER_STALL_SECONDS))
    stalled = Site.objects.filter(queued_long_ago, config_status=Site.ConfigStatus.PENDING).only("pk")
    return task_queue.send_again(stalled, {"config_queued_at": now}, lambda site: APPLY_SITE.delay(site.pk))


def deploy_site(site_id) -> bool:
    """Apply a site's config to nginx; the certificate shows whether nginx serves its version,
    and the owner hears of a config nginx rejected. Raises apply.CertificateFilesNotWritten
    (after recording it) so the task retries."""
    site = Site.objects.filter(pk=site_id).first()
    if site is None:
        return False
    try:
        applied = apply.apply_site_config(site)
    except apply.CertificateFilesNotWritten as exc:
        site = exc.site or site  # as read under nginx's lock: its names now
        if exc.version is not None:
            outcome.record_failure(exc.version, str(exc))
        notifications.notify(site.owner_id, "config_rejected", f"nginx cannot serve the new certificate of {site}",
                             f"The site {site} keeps serving its previous certificate.\n{exc}")
        raise
    site = applied.site or site  # as read under nginx's lock: its names now
    if applied.ok and applied.version is not None:
        outcome.record_success(applied.version)
    elif not applied.ok and applied.error:
        notifications.notify(site.owner_id, "config_rejected", f"nginx rejected the config of {site}",
                             f"The new config of the site {site} was not applied; nginx keeps serving "
                             f"its previous config, if it had one.\nnginx said: {applied.error}")
    return applied.ok


def remove_site(site_id):
    apply.remove_site_config(site_id)


# --- the panel's own vhost (settings.PANEL_PORT)


def queue_panel_vhost():
    """Inside a transaction: the panel's vhost is written again once this commits (its
    certificate has a new version, or its domain changed)."""
    transaction.on_commit(lambda: APPLY_PANEL_VHOST.delay(), robust=True)


def resume_panel_vhost() -> bool:
    """Queue the panel's vhost again if it is not what it should be: its task was lost with its
    broker, or nginx refused it last time. Run by beat with resume_stalled_applies."""
    if panel_vhost.is_current():
        return False
    APPLY_PANEL_VHOST.delay()
    return True


def deploy_panel_vhost() -> bool:
    """Write the panel's vhost with its current certificate (or the self-signed one) and have
    nginx reload: a new TLS handshake on the panel's port shows it, nothing restarts. Raises
    apply.CertificateFilesNotWritten (after recording it) so the task retries."""
    version = PanelHttps.load().serving_version()
    try:
        ok, error = panel_vhost.install()
    except apply.CertificateFilesNotWritten as exc:
        if version is not None:
            outcome.record_failure(version, str(exc))
        raise
    if not ok:
        log.error("nginx refused the panel's vhost; it keeps the previous one: %s", error)
    elif version is not None:
        outcome.record_success(version)
    return ok


# --- install targets


def queue_installs(certificate_id):
    """Inside a transaction: queue the install of the certificate's current version at its
    targets, if it has any, once this commits."""
    if InstallTarget.objects.filter(certificate_id=certificate_id).update(queued_at=timezone.now()):
        transaction.on_commit(lambda: INSTALL_CERTIFICATE.delay(certificate_id), robust=True)


def queue_install(target):
    """Queue one target's install, once the current transaction has committed."""
    certificate_id, target_id = target.certificate_id, target.pk
    InstallTarget.objects.filter(pk=target_id).update(queued_at=timezone.now())
    transaction.on_commit(lambda: INSTALL_CERTIFICATE.delay(certificate_id, target_id), robust=True)


def resume_stalled_installs():
    """Queue again each install queued ORDER_STALL_SECONDS ago or more and not run since (its
    task was lost with its broker: a Redis restarted without persistence)."""
    now = timezone.now()
    stalled = InstallTarget.objects.filter(
        Q(last_run_at__isnull=True) | Q(last_run_at__lt=F("queued_at")),
        queued_at__lt=now - datetime.timedelta(seconds=settings.ORDER_STALL_SECONDS),
    ).only("pk", "certificate_id")
    return task_queue.send_again(stalled, {"queued_at": now},
                                 lambda target: INSTALL_CERTIFICATE.delay(target.certificate_id, target.pk))


def install_certificate(certificate_id, only=None) -> list:
    """Install the certificate's current version at each of its targets (or at target `only`).
    Returns the ids of the targets that failed; the owner hears of each as it fails, through
    the same channel as a failed renewal."""
    return install_targets.run_targets_for(certificate_id, homes.install_roots_of, only=only,
                                           on_failure=_report_install_failure)


def _report_install_failure(target, cert):
    name = cert.domains[0] if cert.domains else f"#{cert.pk}"
    subject = _("Installing the certificate for %(name)s failed") % {"name": name}
    body = (_("Install target #%(id)s of the certificate for %(names)s failed:")
            % {"id": target.pk, "names": ", ".join(cert.domains)}) + "\n" + target.last_error
    try:
        notifications.notify(target.owner_id, "renewal_failed", subject, body)
    except Exception:  # one channel's trouble must not stop the other targets
        log.exception("could not report the failure of install target %s", target.pk)
