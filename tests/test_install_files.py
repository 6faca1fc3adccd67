"""What scripts/install writes for systemd, checked with Debian's systemd-analyze (no running
systemd needed); the scripts' own syntax and refusals. The install itself runs end to end in
tests/e2e/test_install.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ("certpanel.target", "certpanel-web.service", "certpanel-worker.service", "certpanel-deploy.service",
         "certpanel-beat.service")


def render_units(prefix: Path) -> Path:
    """The units as scripts/install renders them for an installation below `prefix`."""
    current = prefix / "opt/certpanel/current"
    (current / ".venv/bin").mkdir(parents=True)
    (current / ".venv/bin/python").symlink_to(sys.executable)
    (current / "scripts").symlink_to(ROOT / "scripts")
    script = f'. "{ROOT}/scripts/lib/install-common.sh"; set_layout "{prefix}"; mkdir -p "$unit_dir"; install_units certpanel'
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    return prefix / "etc/systemd/system"


def verify(unit_dir: Path, names=UNITS) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", *names], cwd=unit_dir, capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})


@pytest.fixture
def unit_dir(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: Debian's systemd package provides it")
    return render_units(tmp_path)


def test_systemd_accepts_every_unit(unit_dir):
    result = verify(unit_dir)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    web = (unit_dir / "certpanel-web.service").read_text()
    assert "@" not in web.replace("certpanel-web", "").replace("redis-server@certpanel", "")  # every placeholder filled


def test_verify_would_catch_a_broken_unit(unit_dir):
    broken = unit_dir / "certpanel-web.service"
    broken.write_text(broken.read_text().replace("ExecStart=/", "ExecStart=relative/"))
    assert verify(unit_dir, ["certpanel-web.service"]).returncode != 0


def test_only_the_deploy_worker_runs_as_root_and_every_process_is_hardened(unit_dir):
    for name in UNITS[1:]:
        text = (unit_dir / name).read_text()
        user = next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("User="))
        assert user == ("root" if name == "certpanel-deploy.service" else "certpanel"), name
        for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ReadWritePaths="):
            assert setting in text, (name, setting)
    deploy = (unit_dir / "certpanel-deploy.service").read_text()
    assert "-Q deploy " in deploy and "acme" not in deploy.split("ExecStart=")[1].splitlines()[0]


@pytest.mark.parametrize("script", ["install", "upgrade"])
def test_the_scripts_parse_and_refuse_what_they_do_not_know(script):
    path = ROOT / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    result = subprocess.run([str(path), "--no-such-option"], capture_output=True, text=True)
    assert result.returncode != 0 and "unknown option --no-such-option" in result.stderr


def test_install_refuses_an_env_value_that_would_run_in_a_shell(tmp_path):
    result = subprocess.run([str(ROOT / "scripts/install"), "--prefix", str(tmp_path), "--env", "X=$(reboot)"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "expected KEY=VALUE" in result.stderr
    assert not (tmp_path / "etc").exists()


def test_upgrade_says_when_nothing_is_installed(tmp_path):
    result = subprocess.run([str(ROOT / "scripts/upgrade"), "--prefix", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0 and "run scripts/install first" in result.stderr
