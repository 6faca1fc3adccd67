"""When nginx reloads: at once when no reload is in flight, one follow-up for whatever comes while
one is, in flight for the measured cost of a reload; a burst of changes (many sites at once) shares
a few reloads, the window growing while reloads that each share several changes keep coming; a
change at a time is never held back by more than the reload in flight."""

import time

import pytest
from django.core.cache import cache

from panel.deployment.nginx import apply

KEYS = [apply.RELOAD_PENDING, apply.RELOAD_BUSY_UNTIL, apply.RELOAD_WINDOW, apply.RELOAD_COST,
        apply.RELOAD_REQUESTS]


@pytest.fixture
def scheduled(monkeypatch, settings, tmp_path):
    """The countdown of every reload task queued (None: at once); reloads send nothing."""
    settings.NGINX_VHOST_DIR = tmp_path / "vhosts"
    settings.NGINX_RELOAD_COALESCE_SECONDS = 0.05
    settings.NGINX_RELOAD_COALESCE_MAX_SECONDS = 4.0
    cache.delete_many(KEYS)
    calls = []
    monkeypatch.setattr(apply.RELOAD_NGINX, "apply_async", lambda countdown=None: calls.append(countdown))
    monkeypatch.setattr(apply, "_send_reload", lambda: None)
    yield calls
    cache.delete_many(KEYS)


def costs(seconds):
    """nginx took this long to parse the whole configuration at the last `nginx -t`."""
    apply._record_cost(seconds)


def burst(requests=5):
    for _ in range(requests):
        apply.request_reload()
    apply.reload_now()


class TestAnIsolatedChange:
    def test_reloads_at_once(self, scheduled):
        costs(3.0)
        apply.request_reload()
        assert scheduled == [None]

    def test_made_soon_after_another_reloads_at_once_once_that_reload_is_over(self, scheduled):
        # Add a site, then press Issue: the certificate's deploy comes ~0.2 s after the site's
        # reload, which cost nginx 20 ms (it used to wait for the rest of a fixed 1 s window).
        costs(0.02)
        apply.request_reload()
        apply.reload_now()
        time.sleep(0.1)
        apply.request_reload()
        assert scheduled == [None, None]


class TestAChangeWhileAReloadIsInFlight:
    def test_gets_exactly_one_follow_up_when_the_reload_ends(self, scheduled):
        costs(2.0)
        apply.request_reload()
        apply.reload_now()
        for _ in range(3):
            apply.request_reload()
        assert len(scheduled) == 2 and scheduled[0] is None
        assert 1.5 < scheduled[1] <= 2.0

    def test_joins_a_reload_queued_and_not_started_yet(self, scheduled):
        costs(2.0)
        apply.request_reload()
        apply.request_reload()
        assert scheduled == [None]


class TestTheWindowFollowsTheMeasuredCost:
    @pytest.mark.parametrize("cost", [0.3, 3.0])
    def test_the_follow_up_waits_as_long_as_a_reload_costs(self, scheduled, cost):
        costs(cost)
        apply.request_reload()
        apply.reload_now()
        apply.request_reload()
        assert cost - 0.5 < scheduled[-1] <= cost

    def test_a_reload_dearer_than_the_maximum_still_is_not_overtaken(self, scheduled):
        costs(10.0)  # 10,000 sites: above NGINX_RELOAD_COALESCE_MAX_SECONDS
        apply.request_reload()
        apply.reload_now()
        apply.request_reload()
        assert 9.5 < scheduled[-1] <= 10.0

    def test_never_shorter_than_the_configured_floor(self, scheduled, settings):
        settings.NGINX_RELOAD_COALESCE_SECONDS = 1.0
        costs(0.01)
        apply.request_reload()
        apply.reload_now()
        apply.request_reload()
        assert 0.5 < scheduled[-1] <= 1.0


def ended_ago(seconds):
    """The last reload's window ended this long ago."""
    cache.set(apply.RELOAD_BUSY_UNTIL, time.time() - seconds, timeout=60)


class TestABurst:
    def test_shares_reloads(self, scheduled):
        costs(0.25)
        for _ in range(3):
            burst(requests=20)  # 60 deploys
        assert len(scheduled) == 3

    def test_each_reload_in_a_burst_makes_the_next_wait_four_times_longer_up_to_the_maximum(self, scheduled):
        costs(0.25)
        for _ in range(4):
            burst()
        waits = scheduled[1:]  # the first reload runs at once; each later one follows one in flight
        assert [round(w, 2) for w in waits] == [0.25, 1.0, 4.0]
        burst()
        assert round(scheduled[-1], 2) == 4.0

    def test_changes_one_at_a_time_never_grow_the_window_however_close(self, scheduled):
        # A user (or a script) adding sites one after another, each just after the last reload
        # ended: each reloads at once; they used to grow the window to its maximum (8 s a site).
        costs(0.25)
        apply.request_reload()
        apply.reload_now()
        for _ in range(3):
            ended_ago(0.2)  # within 4x the cost
            apply.request_reload()
            apply.reload_now()
        assert scheduled == [None] * 4
        apply.request_reload()
        assert scheduled[-1] <= 0.25  # the window stayed at the cost

    def test_a_follow_up_shared_by_one_change_does_not_grow_the_window(self, scheduled):
        # One change while a reload is in flight: its follow-up starts when that reload ends.
        costs(0.25)
        apply.request_reload()
        apply.reload_now()
        apply.request_reload()  # in flight: one follow-up
        ended_ago(0.0)
        apply.reload_now()
        apply.request_reload()
        assert scheduled[:2] == [None, pytest.approx(0.25, abs=0.05)] and scheduled[-1] <= 0.25

    def test_a_change_a_little_after_the_last_reload_ended_keeps_the_window_at_the_cost(self, scheduled):
        # Add a site, then issue its certificate: two reloads, the second at once, no growth.
        costs(0.05)
        apply.request_reload()
        apply.reload_now()
        ended_ago(0.3)  # more than 4x the cost later
        apply.request_reload()
        apply.reload_now()
        apply.request_reload()
        assert scheduled[:2] == [None, None] and 0 < scheduled[2] <= 0.05

    def test_rounds_of_a_few_changes_with_pauses_between_do_not_ratchet_the_window_up(self, scheduled):
        # Add a site, issue its certificate; again a second later; and again: each reloads at once.
        costs(0.15)
        for _ in range(4):
            ended_ago(1.0)  # the pause between rounds
            apply.request_reload()
            apply.reload_now()
            ended_ago(0.3)  # the certificate's deploy, a little after the site's reload
            apply.request_reload()
            apply.reload_now()
        assert scheduled == [None] * 8
        apply.request_reload()
        assert scheduled[-1] <= 0.6  # at most one step up from the cost

    def test_a_quiet_spell_puts_the_window_back_to_the_cost(self, scheduled):
        costs(0.25)
        for _ in range(3):
            burst()
        ended_ago(1.1)  # more than 4x the cost: nginx had time to spare
        apply.request_reload()
        apply.reload_now()
        apply.request_reload()
        assert scheduled[-2] is None and 0.1 < scheduled[-1] <= 0.25

    def test_a_request_after_a_quiet_spell_reloads_at_once_even_after_a_burst(self, scheduled):
        costs(0.25)
        burst()
        burst()
        ended_ago(60)
        apply.request_reload()
        assert scheduled[-1] is None
