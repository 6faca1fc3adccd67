"""A name that resolves inward is refused on the address it resolves to, with a real DNS server.

The system resolver is pointed at a DNS server of the test's own (inside a private network and
mount namespace, so this machine's /etc/resolv.conf and network are untouched) that answers a
customer's API host name with 127.0.0.1: the address a hostile DNS record would give."""

import json
import shutil
import subprocess
import sys

from tests.support.inward_name import NAME
from tests.support.panel import REPO_ROOT

ALLOW_HINT = "ask an administrator to add it to the outbound allow-list"


def test_a_name_whose_record_points_at_loopback_reaches_nothing_for_a_user(tmp_path):
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed to give the test its own network namespace"
    probe = subprocess.run([unshare, "--net", "--mount", sys.executable, "-m", "tests.support.inward_name",
                            str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    results = json.loads(probe.stdout.strip().splitlines()[-1])
    # The name resolves through the DNS server to loopback, and unchecked it leads to the listener.
    assert results["resolved"] == ["127.0.0.1"]
    assert results["unrestricted"] == {"outcome": "connected", "detail": "200", "accepted": 1}
    # For a user's object the connection is refused on that address: the listener sees nothing more.
    for label in ("user_request", "user_upstream"):
        assert results[label]["outcome"] == "refused", results[label]
        assert "127.0.0.1" in results[label]["detail"] and ALLOW_HINT in results[label]["detail"]
        assert results[label]["accepted"] == 1
