"""A worker killed with SIGKILL mid-order: a new worker finishes the same order, once."""

import time

import pytest

from tests.e2e.test_issuance import issue, served


def order_state(stack, cert_id):
    return stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()


def count_rows(stack, cert_id):
    script = (
        "from certs.models import CertificateVersion, Order;"
        f"print(CertificateVersion.objects.filter(certificate_id={cert_id}).count(),"
        f" Order.objects.filter(certificate_id={cert_id}).count())"
    )
    out = stack.manage("shell", "-c", script).stdout.split()
    return int(out[-2]), int(out[-1])


# Pebble's VA waits 0-8 s before validating, so the order sits in "validating"
# (the worker polling and rescheduling) long enough to be killed there.
@pytest.mark.pebble(nosleep=False, va_sleep_seconds=8)
def test_a_killed_worker_does_not_lose_or_duplicate_the_order(panel_stack):
    for attempt in range(3):
        cert = issue(panel_stack, [f"crash{attempt}.example.test"], "ec256")
        deadline = time.monotonic() + 30
        while (status := order_state(panel_stack, cert["id"])["order"]["status"]) not in ("validating", "valid"):
            assert time.monotonic() < deadline and status != "invalid", order_state(panel_stack, cert["id"])
            time.sleep(0.02)
        if status == "validating":
            break
    else:
        pytest.fail("Pebble validated every order before the worker could be killed")

    before = order_state(panel_stack, cert["id"])["order"]
    panel_stack.kill_worker()
    assert not panel_stack.worker_alive
    time.sleep(1)
    assert order_state(panel_stack, cert["id"])["order"]["status"] in ("validating", "finalizing")

    panel_stack.start_worker()
    deadline = time.monotonic() + 90
    while (after := order_state(panel_stack, cert["id"]))["order"]["status"] not in ("valid", "invalid"):
        assert time.monotonic() < deadline, after
        time.sleep(0.1)

    assert after["order"]["status"] == "valid", after
    assert after["order"]["id"] == before["id"]
    created = [line for line in after["order"]["log"] if "Order created at the CA" in line]
    assert len(created) == 1, after["order"]["log"]  # the same ACME order, not a new one
    assert count_rows(panel_stack, cert["id"]) == (1, 1)  # one version, one order
    served(panel_stack, f"crash{attempt}.example.test", after["serial"])
