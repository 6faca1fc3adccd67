"""A burst of deploys (a bulk issuance): reloads share a window that grows while deploys keep coming."""

import time

import pytest
from django.core.cache import cache

from panel.deployment.nginx import apply


class TestReloadWindowUnderABurst:
    @pytest.fixture
    def scheduled(self, monkeypatch, settings):
        settings.NGINX_RELOAD_COALESCE_SECONDS = 1.0
        settings.NGINX_RELOAD_COALESCE_MAX_SECONDS = 4.0
        keys = [apply.RELOAD_PENDING, apply.LAST_RELOAD, apply.RELOAD_WINDOW, apply.RELOAD_SHARED]
        cache.delete_many(keys)
        calls = []
        monkeypatch.setattr(apply.RELOAD_NGINX, "apply_async", lambda countdown=None: calls.append(countdown))
        monkeypatch.setattr(apply, "_send_reload", lambda: None)
        yield calls
        cache.delete_many(keys)

    def burst(self, requests=5):
        for _ in range(requests):
            apply.request_reload()
        apply.reload_now()

    def test_each_shared_reload_doubles_the_wait_for_the_next_up_to_the_maximum(self, scheduled):
        for _ in range(4):
            self.burst()
        apply.request_reload()
        waits = scheduled[1:]  # the first reload runs at once; each shared one doubles the next wait
        assert [round(w) for w in waits] == [2, 4, 4, 4]

    def test_a_reload_that_served_one_request_puts_the_window_back(self, scheduled):
        self.burst()
        self.burst()
        apply.request_reload()
        apply.reload_now()  # one request: the burst is over
        apply.request_reload()
        assert round(scheduled[-1]) == 1

    def test_a_request_after_a_quiet_spell_reloads_at_once_even_after_a_burst(self, scheduled):
        self.burst()
        cache.set(apply.LAST_RELOAD, time.time() - 60, timeout=60)
        apply.request_reload()
        assert scheduled[-1] is None
