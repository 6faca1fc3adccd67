"""Celery entry points of the deployment wing (the deploy queue, see CELERY_TASK_ROUTES). They
take ids, never secrets, and call panel.deployment.dispatch. Each keeps the name it was first
registered under: tasks already queued in Redis when the panel is upgraded still run."""

from celery import shared_task

from panel.deployment import dispatch
from panel.hosting import health
from panel.deployment.nginx import apply


# Unwritable certificate files (a full disk, a read-only directory) usually get fixed:
# retry with back-off (1, 2, 4 ... 300 s, about 45 minutes in all); the error is shown meanwhile.
@shared_task(name="panel.tasks.apply_site", acks_late=True, autoretry_for=(apply.CertificateFilesNotWritten,),
             retry_backoff=1, retry_backoff_max=300, retry_jitter=False, max_retries=16)
def apply_site(site_id):
    dispatch.deploy_site(site_id)


@shared_task(name="panel.tasks.remove_site", acks_late=True)
def remove_site(site_id):
    dispatch.remove_site(site_id)


@shared_task(name="panel.tasks.reload_nginx", acks_late=True, autoretry_for=(apply.NginxError,), retry_backoff=1,
             max_retries=5)
def reload_nginx():
    apply.reload_now()


@shared_task(name="panel.tasks.check_served_certificates", ignore_result=True)
def check_served_certificates():
    """nginx reads each site's certificate at the handshake: a file gone from disk shows on its site."""
    apply.check_served_certificates()


@shared_task(name="panel.tasks.resume_stalled_applies", ignore_result=True)
def resume_stalled_applies():
    dispatch.resume_stalled_applies()
    dispatch.resume_panel_vhost()


@shared_task(name="certs.tasks.install_certificate", acks_late=True, ignore_result=True)
def install_certificate(certificate_id, target_id=None):
    """Install a certificate's current version at its install targets (or at one of them)."""
    dispatch.install_certificate(certificate_id, only=target_id)


@shared_task(name="certs.tasks.resume_stalled_installs", ignore_result=True)
def resume_stalled_installs():
    dispatch.resume_stalled_installs()


@shared_task(name="panel.tasks.apply_panel_vhost", acks_late=True, autoretry_for=(apply.CertificateFilesNotWritten,),
             retry_backoff=1, retry_backoff_max=300, retry_jitter=False, max_retries=16)
def apply_panel_vhost():
    """The panel's own vhost, with its certificate's current version (settings.PANEL_PORT)."""
    dispatch.deploy_panel_vhost()


@shared_task(name="panel.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat(queue):
    """Beat sends one to each queue every 30 s: /healthz tells whether its workers are taking tasks."""
    health.record_heartbeat(queue)
