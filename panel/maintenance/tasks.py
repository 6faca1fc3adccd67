"""Celery entry points of the panel's own upkeep. Names never change (see certs/tasks.py); the
"panel.tasks." prefix routes them to the deploy queue, whose worker reads the certificate files
and nginx additions a backup holds."""

from celery import shared_task

from panel.maintenance import backup


@shared_task(name="panel.tasks.scheduled_backup", ignore_result=True)
def scheduled_backup():
    """Beat, daily when CERTPANEL_BACKUP_DIR is set: a dated archive there, older ones pruned."""
    backup.run_scheduled_backup()
