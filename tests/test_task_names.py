"""Services queue work by task name (panel.toolkit.task_queue.NamedTask): every name they use is
one a worker registers, routed to the queue the deploy or ACME side consumes."""

from importlib import import_module

import pytest
from django.conf import settings

from panel.celery import app
from panel.toolkit.task_queue import NamedTask
from tests.test_layers import MODULES


def named_tasks():
    found = {}
    for module in MODULES:
        if module.startswith("panel.management.commands.runpanel"):
            continue
        for attribute, value in vars(import_module(module)).items():
            if isinstance(value, NamedTask):
                found[f"{module}.{attribute}"] = value.name
    return found


NAMED = named_tasks()


def test_services_queue_tasks_by_name():
    assert len(set(NAMED.values())) >= 7, NAMED  # advance_order, apply/remove site, install, reload, ARI, notify


@pytest.mark.parametrize("handle", sorted(NAMED))
def test_every_queued_name_is_a_task_the_worker_registers(handle):
    for module in settings.CELERY_IMPORTS:
        import_module(module)
    assert NAMED[handle] in app.tasks, f"{handle} queues {NAMED[handle]!r}, which no worker registers"


def test_deploy_work_is_routed_to_the_deploy_queue():
    router = app.amqp.router
    for name in ("panel.tasks.apply_site", "panel.tasks.reload_nginx", "certs.tasks.install_certificate"):
        assert router.route({}, name)["queue"].name == "deploy"
    assert router.route({}, "certs.tasks.advance_order")["queue"].name == "acme"
