"""runpanel's Supervisor: Celery's processes are started again when they end; any other child
ending stops the panel (panel/embedded.py)."""

import sys

from panel.embedded import Supervisor


def test_a_restartable_child_is_started_again_until_it_keeps_failing(tmp_path):
    starts = tmp_path / "starts"
    supervisor = Supervisor(stop_timeout=5)
    supervisor.MAX_RESTARTS = 2
    restarted = []
    try:
        supervisor.start("steady", [sys.executable, "-c", "import time; time.sleep(30)"])
        supervisor.start("worker", ["/bin/sh", "-c", f"echo started >> {starts}; exit 3"], restart=True)

        ended = supervisor.supervise(interval=0.01, on_restart=lambda *child: restarted.append(child))
    finally:
        supervisor.stop_all()

    assert restarted == [("worker", 3), ("worker", 3)]
    assert starts.read_text().splitlines() == ["started"] * 3  # the first start and two restarts
    assert ended == ("worker", 3)  # a third exit within the window ends the supervision


def test_any_other_child_ending_ends_the_supervision_at_once():
    supervisor = Supervisor(stop_timeout=5)
    restarted = []
    try:
        supervisor.start("worker", [sys.executable, "-c", "import time; time.sleep(30)"], restart=True)
        supervisor.start("nginx", ["/bin/sh", "-c", "exit 1"])

        ended = supervisor.supervise(interval=0.01, on_restart=lambda *child: restarted.append(child))
    finally:
        supervisor.stop_all()

    assert ended == ("nginx", 1) and restarted == []
