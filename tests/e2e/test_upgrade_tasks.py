"""An upgrade moves code, never task names: a task the previous release queued in Redis (a retry,
a countdown, work queued while the worker was stopped for the upgrade) runs on the new worker.

The names and queues below are what the release before the deployment wing registered and routed
(certs/tasks.py and panel/tasks.py of that time), written out here so that a rename fails this test
instead of silently dropping what waits in Redis."""

import re
import time
import uuid

from celery import Celery

OLD_TASKS = {
    # name: (queue the old routes sent it to, arguments that make it a no-op)
    "certs.tasks.advance_order": ("acme", (0, str(uuid.uuid4()))),
    "certs.tasks.resume_stalled_orders": ("acme", ()),
    "certs.tasks.resume_stalled_installs": ("acme", ()),
    "certs.tasks.renewal_sweep": ("acme", ()),
    "certs.tasks.install_certificate": ("deploy", (0,)),
    "certs.tasks.send_notification": ("acme", (0, "renewed", "subject", "body")),
    "certs.tasks.expiry_alerts": ("acme", ()),
    "certs.tasks.ari_refresh": ("acme", (0,)),
    "certs.tasks.ari_recheck": ("acme", ()),
    "panel.tasks.remove_site": ("deploy", (0,)),
    "panel.tasks.reload_nginx": ("deploy", ()),
    "panel.tasks.resume_stalled_applies": ("deploy", ()),
}


def test_tasks_queued_under_the_old_names_run_after_the_upgrade(panel_stack):
    root = panel_stack.www_dir / "upgrade.example.test"
    root.mkdir(parents=True)
    (root / "index.html").write_text("served after the upgrade\n")
    site = panel_stack.api("POST", "/api/v1/sites/", {"domains": ["upgrade.example.test"], "root": str(root)})
    assert site.status_code == 201, site.text
    site_id = site.json()["id"]
    deadline = time.monotonic() + 30
    while panel_stack.http_get("upgrade.example.test").status_code != 200:
        assert time.monotonic() < deadline, panel_stack.dump_logs()
        time.sleep(0.1)

    # The worker is stopped for the upgrade. The site gains a name in the database meanwhile,
    # and only the old release's apply, waiting in Redis, can put it into nginx.
    panel_stack.kill_worker()
    panel_stack.manage("shell", "-c", (
        "from panel.models import Site, SiteDomain; "
        f"site = Site.objects.get(pk={site_id}); site.domains = site.domains + ['later.example.test']; "
        "Site.objects.filter(pk=site.pk).update(domains=site.domains); "
        "SiteDomain.objects.create(site=site, name='later.example.test')"))
    assert panel_stack.http_get("later.example.test").status_code == 404

    # Not the current app: this process is a test, not the panel, and must not take its place.
    old_release = Celery("old-release", broker=panel_stack.redis.url, set_as_current=False)
    sent = {}
    for name, (queue, args) in {**OLD_TASKS, "panel.tasks.apply_site": ("deploy", (site_id,))}.items():
        sent[name] = old_release.send_task(name, args=args, queue=queue).id
    old_release.close()

    worker = panel_stack.start_worker()
    deadline = time.monotonic() + 60
    while True:
        log = worker.log_path.read_text()
        missing = [name for name, task_id in sent.items()
                   if not re.search(rf"Task {re.escape(name)}\[{task_id}\] succeeded", log)]
        if not missing:
            break
        assert "unregistered task" not in log, log[-3000:]
        assert time.monotonic() < deadline, f"not run: {missing}\n{log[-3000:]}"
        time.sleep(0.2)

    deadline = time.monotonic() + 30
    while (answer := panel_stack.http_get("later.example.test")).status_code != 200:
        assert time.monotonic() < deadline, panel_stack.dump_logs()
        time.sleep(0.1)
    assert answer.text == "served after the upgrade\n"
