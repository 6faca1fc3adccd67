"""Celery entry points on the hosting side. They take ids, never secrets."""

from celery import shared_task

from panel.models import Site
from panel.nginx import apply


@shared_task(acks_late=True)
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
