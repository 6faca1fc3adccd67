"""Fixtures for end-to-end tests: each test gets its own Pebble, Redis and panel processes.

Options come from markers: @pytest.mark.pebble(nosleep=False, va_sleep_seconds=5) and
@pytest.mark.panel_stack(database_url="postgres"). On failure the processes' logs are
attached to the report ("e2e logs" section).

DNS servers: `bind_server` (BIND 9, @pytest.mark.bind(zones=["example.test", "alias.test"]),
default one zone example.test), `powerdns_server` (PowerDNS with its API,
@pytest.mark.powerdns(zone="pdns.test"), default example.test) and `dns_resolver` (a forwarding
BIND resolver for the zones of whichever of those two the test uses; bind_server if neither).

Browser: `browser_session`, a fresh Chromium context on the panel_stack's web server (one
Chromium per test process); a failed test leaves test-artifacts/<test>/failure.png.
"""

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support import (
    BindResolver,
    BindServer,
    PanelStack,
    Pebble,
    PowerDnsServer,
    RedisServer,
    postgres_available,
)
from tests.support.browser import BrowserSession, launch_chromium

_HERE = Path(__file__).resolve().parent
_components = pytest.StashKey[list]()
_call_failed = pytest.StashKey[bool]()


def pytest_configure(config):
    config.addinivalue_line("markers", "bind(**options): keyword arguments for the `bind_server` fixture's "
                            'BindServer(...), e.g. zones=["example.test", "alias.test"]')
    config.addinivalue_line("markers", "powerdns(**options): keyword arguments for the `powerdns_server` "
                            'fixture\'s PowerDnsServer(...), e.g. zone="pdns.test"')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_call_failed] = report.failed
    if report.failed and item.stash.get(_components, None):
        for component in item.stash[_components]:
            try:
                report.sections.append((f"e2e logs: {type(component).__name__}", component.dump_logs()))
            except Exception as exc:  # noqa: BLE001 - never hide the real failure
                report.sections.append(("e2e logs", f"could not read logs: {exc!r}"))
    return report


def _options(request, name):
    marker = request.node.get_closest_marker(name)
    return dict(marker.kwargs) if marker else {}


def _register(request, component):
    request.node.stash.setdefault(_components, []).append(component)


@pytest.fixture
def pebble(request, tmp_path):
    instance = Pebble(tmp_path / "pebble", **_options(request, "pebble"))
    _register(request, instance)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def redis_server(request, tmp_path):
    instance = RedisServer(tmp_path / "redis")
    _register(request, instance)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def panel_stack(request, tmp_path, pebble, redis_server):
    options = _options(request, "panel_stack")
    if options.get("database_url") == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, **options)
    _register(request, stack)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def bind_server(request, tmp_path):
    instance = BindServer(tmp_path / "bind", **_options(request, "bind"))
    _register(request, instance)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def powerdns_server(request, tmp_path):
    instance = PowerDnsServer(tmp_path / "powerdns", **_options(request, "powerdns"))
    _register(request, instance)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def dns_resolver(request, tmp_path):
    """One address that resolves the zones of the test's bind_server and/or powerdns_server."""
    names = [n for n in ("bind_server", "powerdns_server") if n in request.fixturenames] or ["bind_server"]
    servers = [request.getfixturevalue(n) for n in names]
    instance = BindResolver.for_servers(tmp_path / "resolver", *servers)
    _register(request, instance)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browser_session(request, chromium, panel_stack):
    session = BrowserSession(chromium, panel_stack.web_url, request.node.name)
    yield session
    if request.node.stash.get(_call_failed, False):
        session.screenshot("failure")
    session.close()
