"""Celery entry points on the hosting side. They take ids, never secrets."""

from celery import shared_task

from panel import sites
from panel.models import Site
from panel.nginx import apply


# Unwritable certificate files (a full disk, a read-only directory) usually get fixed:
# retry with back-off (1, 2, 4 ... 300 s, about 45 minutes in all); the error is shown meanwhile.
@shared_task(acks_late=True, autoretry_for=(apply.CertificateFilesNotWritten,), retry_backoff=1,
             retry_backoff_max=300, retry_jitter=False, max_retries=16)
def apply_site(site_id):
    site = Site.objects.filter(pk=site_id).first()
    if site is None:
        return
    apply.apply_site_config(site)


@shared_task(acks_late=True)
def remove_site(site_id):
    apply.remove_site_config(site_id)


@shared_task(acks_late=True, autoretry_for=(apply.NginxError,), retry_backoff=1, max_retries=5)
def reload_nginx():
    apply.reload_now()


@shared_task(ignore_result=True)
def resume_stalled_applies():
    sites.resume_stalled_applies()
