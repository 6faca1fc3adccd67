"""Faults on the worker side: a worker killed at each order state, two workers racing for one
certificate, Redis restarted while orders are in flight. No certificate version is lost or made
twice, the CA sees one order per request, and nginx serves the result.

The stack runs beat (as `runpanel` does) with a short claim and a short stalled-order sweep, so
a killed worker's order is taken over within seconds instead of after the production 45 s.
"""

import signal
import sqlite3
import threading
import time

import pytest

from tests.e2e.test_issuance import issue, served, wait_for_status

FAST_TAKEOVER = {"CERTPANEL_ORDER_CLAIM_SECONDS": "5", "CERTPANEL_ORDER_STALL_SECONDS": "2"}
pytestmark = pytest.mark.panel_stack(extra_env=FAST_TAKEOVER)

STATES = ("new", "authorizing", "validating", "finalizing", "valid")
# The moment to stop the worker at, per state. "new" waits until the CA has created the
# order, so a restarted worker must resume that order rather than create another one.
AT_STATE = {
    "new": lambda status, acme_url: status == "new" and acme_url != "",
    "authorizing": lambda status, acme_url: status == "authorizing",
    "validating": lambda status, acme_url: status == "validating",
    "finalizing": lambda status, acme_url: status == "finalizing",
}


class Rows:
    """Reads the stack's SQLite database directly: fast enough to catch a state that lasts
    milliseconds, and never through the worker being tested."""

    def __init__(self, stack):
        self.connection = sqlite3.connect(f"file:{stack.tmp_dir / 'panel.sqlite3'}?mode=ro", uri=True,
                                          isolation_level=None, check_same_thread=False)

    def latest_order(self, cert_id):
        return self.connection.execute(
            "SELECT status, acme_url FROM certs_order WHERE certificate_id = ? ORDER BY id DESC LIMIT 1", (cert_id,)
        ).fetchone()

    def count(self, table, cert_id):
        return self.connection.execute(f"SELECT COUNT(*) FROM {table} WHERE certificate_id = ?",
                                       (cert_id,)).fetchone()[0]

    def versions(self, cert_id):
        return self.count("certs_certificateversion", cert_id)

    def orders(self, cert_id):
        return self.count("certs_order", cert_id)


def stop_worker_at(stack, rows, cert_id, state):
    """SIGSTOP the worker once the certificate's order is at `state`. False if the order went
    past it first (the worker is then left running)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = rows.latest_order(cert_id)
        if row and AT_STATE[state](*row):
            stack.worker.signal_group(signal.SIGSTOP)
            if AT_STATE[state](*rows.latest_order(cert_id)):
                return True
            stack.worker.signal_group(signal.SIGCONT)
            return False
        if row and (row[0] == "invalid" or STATES.index(row[0]) > STATES.index(state)):
            return False
        time.sleep(0.0005)
    pytest.fail(f"the order never reached {state}: {rows.latest_order(cert_id)}")


def pebble_orders(stack):
    return stack.pebble.pebble.log_text(since_start=False).count("Added order")


def finished(stack, cert_id):
    body = wait_for_status(stack, cert_id, "valid")
    assert body["order"]["status"] == "valid", body
    return body


def test_a_worker_killed_at_each_order_state_loses_nothing_and_repeats_nothing(panel_stack):
    # Every state on one stack (a stack takes ~30 s to start): each state has its own
    # certificate, and the worker killed at one state is a fresh one started after the last.
    panel_stack.start_beat()
    rows = Rows(panel_stack)
    for state in AT_STATE:
        for attempt in range(5):
            name = f"kill-{state}-{attempt}.example.test"
            cert = issue(panel_stack, [name], "ec256")
            if stop_worker_at(panel_stack, rows, cert["id"], state):
                break
        else:
            pytest.fail(f"every order went past {state} before the worker could be stopped")

        before = panel_stack.api("GET", f"/api/v1/certificates/{cert['id']}/").json()["order"]
        panel_stack.kill_worker()
        assert not panel_stack.worker_alive, state
        assert before["status"] == state
        panel_stack.start_worker()

        after = finished(panel_stack, cert["id"])
        assert after["order"]["id"] == before["id"], state
        created = [line for line in after["order"]["log"] if "Order created at the CA" in line]
        assert len(created) == 1, (state, after["order"]["log"])  # the same ACME order, not a new one
        assert (rows.versions(cert["id"]), rows.orders(cert["id"])) == (1, 1), state
        served(panel_stack, name, after["serial"])


def test_two_workers_racing_for_one_certificate_make_one_order_and_one_version(panel_stack):
    cert = issue(panel_stack, ["race.example.test"], "ec256")
    first = finished(panel_stack, cert["id"])
    rows = Rows(panel_stack)
    panel_stack.start_worker()
    workers = panel_stack.workers
    orders_at_ca = pebble_orders(panel_stack)

    # Both workers frozen: the renewal's task, and copies of it, wait for them in the queue.
    for worker in workers:
        worker.signal_group(signal.SIGSTOP)
    answers = []
    requests_at_once = [threading.Thread(target=lambda: answers.append(
        panel_stack.api("POST", f"/api/v1/certificates/{cert['id']}/renew/").status_code)) for _ in range(2)]
    for thread in requests_at_once:
        thread.start()
    for thread in requests_at_once:
        thread.join()
    assert sorted(answers) == [202, 409]
    panel_stack.manage("shell", "-c", (
        "from certs.models import Order; from certs.orders import enqueue;"
        f"order = Order.objects.filter(certificate_id={cert['id']}).exclude(status__in=Order.FINISHED).get();"
        "[enqueue(order.pk, order.wakeup, 0) for _ in range(3)]"
    ))
    for worker in workers:
        worker.signal_group(signal.SIGCONT)

    deadline = time.monotonic() + 60
    while True:
        second = panel_stack.api("GET", f"/api/v1/certificates/{cert['id']}/").json()
        if second["serial"] != first["serial"] and second["order"]["status"] == "valid":
            break
        assert time.monotonic() < deadline and second["order"]["status"] != "invalid", second
        time.sleep(0.1)
    assert pebble_orders(panel_stack) == orders_at_ca + 1
    assert (rows.versions(cert["id"]), rows.orders(cert["id"])) == (2, 2)
    served(panel_stack, "race.example.test", second["serial"])


def test_redis_restarted_mid_run_loses_no_order_and_the_api_says_why_it_cannot_queue(panel_stack, redis_server):
    panel_stack.start_beat()
    rows = Rows(panel_stack)
    names = [f"redis{i}.example.test" for i in range(4)]
    certs = [issue(panel_stack, [name], "ec256") for name in names]

    redis_server.stop()
    site = panel_stack.api("GET", "/api/v1/sites/")
    assert site.status_code == 200  # reading needs no queue
    refused = panel_stack.api("POST", f"/api/v1/certificates/{certs[0]['id']}/renew/", timeout=10)
    assert refused.status_code == 503, refused.text
    assert "task queue" in refused.json()["detail"]
    requested = panel_stack.api("POST", "/api/v1/certificates/", {
        "domains": [names[0]], "acme_account": certs[0]["acme_account"], "key_type": "ec256", "site": certs[0]["site"],
    }, timeout=10)
    assert requested.status_code == 503, requested.text
    assert panel_stack.api("GET", "/api/v1/certificates/").json()["count"] == len(certs)  # nothing half stored
    redis_server.start()

    for cert, name in zip(certs, names):
        body = finished(panel_stack, cert["id"])
        assert (rows.versions(cert["id"]), rows.orders(cert["id"])) == (1, 1), name
        served(panel_stack, name, body["serial"])
