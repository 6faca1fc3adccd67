"""Renewal end to end with a test clock: beat finds the certificate due, renews it, nginx
serves the new serial; with the CA down the renewal backs off, then succeeds once it is back."""

import datetime
import time

import pytest

from tests.e2e.test_issuance import issue, served, wait_for_status


def set_clock(stack, when):
    (stack.tmp_dir / "clock").write_text(when.isoformat() if when else "")


def settle():
    time.sleep(8.5)  # CERTPANEL_RENEWAL_MIN_AGE_SECONDS below


def certificate(stack, cert_id):
    return stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()


def parse(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


@pytest.fixture
def renewing_stack(request, tmp_path, pebble, redis_server):
    from tests.support import PanelStack

    stack = PanelStack(tmp_path / "panel", pebble, redis_server, extra_env={
        "CERTPANEL_TEST_CLOCK_FILE": str(tmp_path / "panel" / "clock"),
        "CERTPANEL_RENEWAL_SWEEP_SECONDS": "1",
        "CERTPANEL_ORDER_MAX_RETRIES": "0",
        "CERTPANEL_RENEWAL_RETRY_SECONDS": "2",
        # Pebble's certificates run five real years, the test clock jumps there: a version
        # must be this old (real time) before it renews, or a renewed one would be due again.
        "CERTPANEL_RENEWAL_MIN_AGE_SECONDS": "8",
    })
    stack.start()
    stack.start_beat()
    yield stack
    stack.stop()


def test_a_certificate_renews_when_a_third_of_its_lifetime_is_left(renewing_stack):
    stack = renewing_stack
    first = wait_for_status(stack, issue(stack, ["renew.example.test"], "ec256")["id"], "valid")
    assert first["order"]["status"] == "valid", first
    served(stack, "renew.example.test", first["serial"])

    not_before, not_after = parse(first["not_before"]), parse(first["not_after"])
    planned = parse(first["next_renewal_at"])
    third_left = not_after - (not_after - not_before) / 3
    assert third_left - datetime.timedelta(hours=12, seconds=1) <= planned <= third_left

    settle()
    set_clock(stack, planned - datetime.timedelta(minutes=1))  # not yet due
    time.sleep(3)  # three sweeps
    assert certificate(stack, first["id"])["serial"] == first["serial"]

    set_clock(stack, planned + datetime.timedelta(seconds=1))
    renewed = wait(lambda: (c := certificate(stack, first["id"]))["serial"] != first["serial"]
                   and c["order"]["status"] == "valid" and c, what="the beat sweep renewing it")
    set_clock(stack, None)
    served(stack, "renew.example.test", renewed["serial"])
    assert parse(renewed["next_renewal_at"]) > parse(renewed["not_before"])
    assert any("Renewal requested" in line for line in renewed["order"]["log"])


def test_a_renewal_with_the_ca_down_backs_off_then_succeeds(renewing_stack, pebble):
    stack = renewing_stack
    first = wait_for_status(stack, issue(stack, ["backoff.example.test"], "ec256")["id"], "valid")
    planned = parse(first["next_renewal_at"])
    settle()

    pebble.stop()
    set_clock(stack, planned + datetime.timedelta(seconds=1))
    failed = wait(lambda: (c := certificate(stack, first["id"]))["order"]["status"] == "invalid" and c,
                  what="the renewal failing while the CA is down")
    assert "reach the CA" in failed["last_error"] or "connection" in failed["last_error"].lower(), failed
    retry_at = parse(failed["next_renewal_at"])
    assert planned < retry_at <= planned + datetime.timedelta(seconds=1, minutes=1)  # backed off, soon
    assert failed["serial"] == first["serial"]  # the old certificate is still served

    pebble.start()  # a fresh Pebble: the panel registers its account again
    set_clock(stack, retry_at + datetime.timedelta(seconds=1))
    renewed = wait(lambda: (c := certificate(stack, first["id"]))["order"]["status"] == "valid"
                   and c["serial"] != first["serial"] and c, timeout=90, what="the retry succeeding")
    set_clock(stack, None)
    served(stack, "backoff.example.test", renewed["serial"])
    versions = stack.manage("shell", "-c", "from certs.models import CertificateVersion as V;"
                            f"print(V.objects.filter(certificate_id={first['id']}).count())").stdout.split()[-1]
    assert versions == "2"  # the original and exactly one renewal
