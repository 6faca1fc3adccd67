"""A bulk issuance on one stack, shared by bench/bulk and bench/memory.

`BulkIssuance` creates N sites (untimed), then requests one certificate per site at once
through the API and waits until nginx serves every one of them. The clock runs from the
first POST until the last name's TLS handshake returns its Pebble certificate.

nginx reloads are counted twice, independently: by the panel (the worker log's
`reload_nginx` tasks that succeeded, each one a SIGHUP to the master) and by nginx itself
(its master logs "reconfiguring" at notice level once per SIGHUP it acts on).
"""

import importlib.machinery
import importlib.util
import re
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography import x509

from tests.support import certificate_names, tls_peer_certificate
from tests.support.ports import LOOPBACK

BENCH_DIR = Path(__file__).resolve().parent
EMAIL = "bench@example.com"
DOMAIN = "bulk.test"
SERVED_TIMEOUT = 600.0
CLIENT_THREADS = 8  # POSTs in flight at once: "requested at once" by a script or a bulk form
SWEEP_PAUSE = 0.02  # between handshake sweeps over the names not served yet (set-up)
# While timing, the names not served yet are swept with TLS handshakes whenever nginx's
# error log grows (a reload logs several lines, the last as the old workers exit, after the
# new ones answer) and at least this often: sweeping non-stop would take a core from the panel.
SWEEP_AT_LEAST_EVERY = 0.25
LOG_WATCH_INTERVAL = 0.005


def load_issue_latency():
    """bench/issue_latency as a module: its certbot and lego runners are reused, not copied."""
    path = BENCH_DIR / "issue_latency"
    loader = importlib.machinery.SourceFileLoader("issue_latency", str(path))
    spec = importlib.util.spec_from_loader("issue_latency", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class BulkError(RuntimeError):
    pass


def bulk_names(count, prefix="b"):
    return [f"{prefix}{i}.{DOMAIN}" for i in range(count)]


class BulkIssuance:
    """One certificate per site for many sites, requested at once; done when all are served."""

    def __init__(self, stack):
        self.stack = stack
        self.issuer = x509.load_pem_x509_certificate(stack.pebble.intermediate_pem().encode()).subject
        self.account_id = None
        self.sites = {}
        self._local = threading.local()

    def _session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers.update(self.stack.session.headers)
        return self._local.session

    def _post(self, path, payload):
        return self._session().post(f"{self.stack.web_url}{path}", json=payload, timeout=60)

    def setup(self, names):
        """The ACME account and one site per name, each served over HTTP. Untimed."""
        account = self.stack.api("POST", "/api/v1/acme-accounts/",
                                 {"directory_url": self.stack.pebble.directory_url, "email": EMAIL})
        if account.status_code != 201:
            raise BulkError(f"creating the ACME account failed: {account.status_code} {account.text}")
        self.account_id = account.json()["id"]

        def create_site(name):
            root = self.stack.www_dir / name
            root.mkdir(parents=True, exist_ok=True)
            (root / "index.html").write_text(f"hello from {name}\n")
            site = self._post("/api/v1/sites/", {"domains": [name], "root": str(root)})
            if site.status_code != 201:
                raise BulkError(f"creating the site {name} failed: {site.status_code} {site.text}")
            return name, site.json()["id"]

        with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
            self.sites.update(pool.map(create_site, names))
        pending = set(names)
        deadline = time.monotonic() + SERVED_TIMEOUT
        while pending:
            for name in sorted(pending):
                try:
                    if f"hello from {name}" in self.stack.http_get(name).text:
                        pending.discard(name)
                except OSError:
                    pass
            if pending and time.monotonic() > deadline:
                raise BulkError(f"{len(pending)} sites not served over HTTP after {SERVED_TIMEOUT:.0f} s")
            time.sleep(SWEEP_PAUSE)
        time.sleep(2)  # let the last coalesced reload of the set-up settle before counting

    def _served(self, name):
        try:
            leaf = tls_peer_certificate(LOOPBACK, self.stack.https_port, name, timeout=5)
        except (OSError, ssl.SSLError):
            return False
        return leaf.issuer == self.issuer and certificate_names(leaf) == [name]

    def _request(self, name):
        payload = {"domains": [name], "acme_account": self.account_id, "key_type": "ec256",
                   "site": self.sites[name]}
        response = self._post("/api/v1/certificates/", payload)
        if response.status_code != 201:
            raise BulkError(f"POST /api/v1/certificates/ for {name}: {response.status_code} {response.text}")
        return name, response.json()["id"]

    def _failed_orders(self, cert_ids):
        failed = []
        for name, cert_id in cert_ids.items():
            body = self.stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()
            if body["order"] and body["order"]["status"] == "invalid":
                failed.append(f"{name}: {body['last_error']}")
        return failed

    def run(self, on_progress=None):
        """Request a certificate for every site at once; returns a result dict.

        Timed: from just before the first POST until every name's handshake returns its
        certificate. Reloads are counted from the first POST until the last name is served.
        """
        names = sorted(self.sites)
        reloads_before = self.reload_counts()
        wall0 = time.time()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
            cert_ids = dict(pool.map(self._request, names))
        posted = time.perf_counter() - t0
        pending = set(names)
        served_at = {}
        next_failure_check = t0 + 30.0
        while pending:
            for name in sorted(pending):
                if self._served(name):
                    pending.discard(name)
                    served_at[name] = time.perf_counter() - t0
            now = time.perf_counter()
            if on_progress:
                on_progress(len(names) - len(pending), len(names))
            if pending and now > next_failure_check:  # only when slow: has an order failed?
                failed = self._failed_orders({n: cert_ids[n] for n in pending})
                if failed:
                    raise BulkError(f"{len(failed)} order(s) failed; first: {failed[0]}")
                next_failure_check = now + 10.0
            if pending and now - t0 > SERVED_TIMEOUT:
                raise BulkError(f"{len(pending)} of {len(names)} not served after {SERVED_TIMEOUT:.0f} s")
            if pending:
                self._wait_for_nginx_news(now + SWEEP_AT_LEAST_EVERY)
        elapsed = max(served_at.values())
        reloads_after = self.reload_counts()
        self._check_serials(cert_ids)
        return {
            "count": len(names), "total_s": elapsed, "posts_done_s": posted, "wall_start": wall0,
            "first_served_s": min(served_at.values()),
            "median_served_s": sorted(served_at.values())[len(served_at) // 2],
            "reloads_by_panel": reloads_after["panel"] - reloads_before["panel"],
            "reloads_by_nginx": reloads_after["nginx"] - reloads_before["nginx"],
        }

    def _wait_for_nginx_news(self, until):
        """Until nginx's error log grows (a reload under way) or `until` (perf_counter)."""
        error_log = self.stack.nginx_error_log
        size = error_log.stat().st_size
        while time.perf_counter() < until and error_log.stat().st_size == size:
            time.sleep(LOG_WATCH_INTERVAL)

    def _check_serials(self, cert_ids):
        """Untimed: every served certificate is the one the API reports."""
        for name, cert_id in cert_ids.items():
            leaf = tls_peer_certificate(LOOPBACK, self.stack.https_port, name, timeout=5)
            body = self.stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()
            if body.get("serial") != format(leaf.serial_number, "x"):
                raise BulkError(f"{name}: nginx serves serial {leaf.serial_number:x}, the API reports "
                                f"{body.get('serial')}")

    def reload_counts(self):
        """Reloads so far: {'panel': reload_nginx tasks succeeded, 'nginx': SIGHUPs nginx acted on}."""
        panel = sum(len(_RELOAD_TASK_DONE.findall(path.read_text(errors="replace")))
                    for path in self.stack.log_paths if path.name.startswith("worker-"))
        error_log = self.stack.nginx_error_log
        nginx = error_log.read_text(errors="replace").count(", reconfiguring") if error_log.exists() else 0
        return {"panel": panel, "nginx": nginx}


_RELOAD_TASK_DONE = re.compile(r"Task panel\.tasks\.reload_nginx\[[0-9a-f-]+\] succeeded")
