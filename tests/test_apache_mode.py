"""http-01-apache against a real Apache httpd 2.4 (Debian's apache2) on a high port."""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from certs.challenges import apache_mode
from certs.challenges.config_edit import ServerConfigError, http_get
from tests.support.ports import free_port
from tests.support.process import wait_until
from tests.test_nginx_mode import (KEY_A, KEY_B, TOKEN_A, TOKEN_B, in_a_child, left_in,
                                   present_and_get_killed_before_storing, tree_digest)

MODULES = "/usr/lib/apache2/modules"


@pytest.fixture
def readable_dir():
    """A directory Apache's workers (www-data) can read: pytest's tmp_path is root-only."""
    path = Path(tempfile.mkdtemp(prefix="certpanel-apache-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hand_made_apache(readable_dir):
    port = free_port()
    conf = readable_dir / "apache2"
    (conf / "sites-available").mkdir(parents=True)
    (conf / "sites-enabled").mkdir()
    run = readable_dir / "run"
    run.mkdir()
    docs = readable_dir / "www"
    docs.mkdir()
    (docs / "index.html").write_text("app\n")
    os.chmod(docs / "index.html", 0o644)
    (conf / "apache2.conf").write_text(
        f"ServerRoot {conf}\nPidFile {run}/apache2.pid\nDefaultRuntimeDir {run}\nErrorLog {run}/error.log\n"
        f"LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n"
        f"LoadModule authz_core_module {MODULES}/mod_authz_core.so\n"
        f"LoadModule alias_module {MODULES}/mod_alias.so\n"
        f"LoadModule dir_module {MODULES}/mod_dir.so\n"
        "User www-data\nGroup www-data\nServerName localhost\n"
        f"Listen 127.0.0.1:{port}\n"
        f"<Directory {docs}>\n    Require all granted\n</Directory>\n"
        "IncludeOptional sites-enabled/*.conf\n"
    )
    (conf / "sites-available" / "000-default.conf").write_text(
        f"<VirtualHost *:{port}>\n    DocumentRoot {docs}\n</VirtualHost>\n"
    )
    # Two sites in one file, the second with a wildcard alias; CRLF line ends, as some editors leave.
    (conf / "sites-available" / "sites.conf").write_bytes(
        f"<VirtualHost *:{port}>\r\n    ServerName shop.example\r\n    ServerAlias www.shop.example\r\n"
        f"    DocumentRoot {docs}\r\n</VirtualHost>\r\n\r\n"
        f"<VirtualHost *:{port}>\r\n    ServerName blog.example\r\n    ServerAlias *.blog.example\r\n"
        f"    DocumentRoot {docs}\r\n</VirtualHost>\r\n".encode()
    )
    os.chmod(conf / "sites-available" / "sites.conf", 0o600)
    for site in ("000-default.conf", "sites.conf"):
        (conf / "sites-enabled" / site).symlink_to(f"../sites-available/{site}")
    config = conf / "apache2.conf"
    subprocess.run(["apache2", "-f", str(config), "-k", "start"], check=True)
    wait_until(lambda: (run / "apache2.pid").exists(), 10, "apache2 to start")
    yield config, port
    subprocess.run(["apache2", "-f", str(config), "-k", "stop"], check=False)


def challenge(port, host, token):
    return http_get("127.0.0.1", port, host, f"/.well-known/acme-challenge/{token}")


def test_present_answers_through_each_virtual_host_and_restore_puts_every_byte_back(hand_made_apache, readable_dir):
    config, port = hand_made_apache
    before = tree_digest(config.parent)
    assert challenge(port, "www.shop.example", TOKEN_A)[0] == 404

    state = apache_mode.present_in_config(
        config, [("www.shop.example", TOKEN_A, KEY_A), ("x.blog.example", TOKEN_B, KEY_B)],
        port=port, work_root=readable_dir / "work",
    )

    assert challenge(port, "www.shop.example", TOKEN_A) == (200, KEY_A)
    assert challenge(port, "x.blog.example", TOKEN_B) == (200, KEY_B)
    assert http_get("127.0.0.1", port, "shop.example", "/") == (200, "app\n")
    assert tree_digest(config.parent) != before

    apache_mode.restore(state)

    assert tree_digest(config.parent) == before
    assert left_in(readable_dir / "work") == []
    wait_until(lambda: challenge(port, "www.shop.example", TOKEN_A)[0] == 404, 10, "the old config to serve again")
    assert http_get("127.0.0.1", port, "shop.example", "/") == (200, "app\n")


def test_a_name_without_its_own_virtual_host_is_answered_by_the_default_one(hand_made_apache, readable_dir):
    config, port = hand_made_apache
    before = tree_digest(config.parent)
    state = apache_mode.present_in_config(config, [("other.example", TOKEN_A, KEY_A)], port=port,
                                work_root=readable_dir / "work")
    assert challenge(port, "other.example", TOKEN_A) == (200, KEY_A)
    apache_mode.restore(state)
    assert tree_digest(config.parent) == before


def test_no_virtual_host_on_the_port_is_a_clear_error(hand_made_apache, readable_dir):
    config, port = hand_made_apache
    before = tree_digest(config.parent)
    with pytest.raises(ServerConfigError, match=f"no <VirtualHost> .* listens on port {port + 1}"):
        apache_mode.present_in_config(config, [("shop.example", TOKEN_A, KEY_A)], port=port + 1,
                            work_root=readable_dir / "work")
    assert tree_digest(config.parent) == before


def test_a_snippet_apache_rejects_is_reported_and_every_file_restored(hand_made_apache, readable_dir, monkeypatch):
    config, port = hand_made_apache
    before = tree_digest(config.parent)
    monkeypatch.setattr(apache_mode, "_snippet", lambda answers_dir, answers: "NoSuchDirective on\n")
    with pytest.raises(ServerConfigError, match="(?s)apache2ctl -t rejected the config.*NoSuchDirective"):
        apache_mode.present_in_config(config, [("shop.example", TOKEN_A, KEY_A), ("blog.example", TOKEN_B, KEY_B)],
                            port=port, work_root=readable_dir / "work")
    assert tree_digest(config.parent) == before
    assert left_in(readable_dir / "work") == []
    assert http_get("127.0.0.1", port, "shop.example", "/") == (200, "app\n")


def apache_accepts(config: Path) -> bool:
    return subprocess.run(["apache2", "-f", str(config), "-t"], capture_output=True).returncode == 0


def test_two_orders_on_one_virtual_host_are_both_answered_and_cleaned_up_in_any_order(hand_made_apache, readable_dir):
    config, port = hand_made_apache
    work = readable_dir / "work"
    before = tree_digest(config.parent)
    first = apache_mode.present_in_config(config, [("shop.example", TOKEN_A, KEY_A)], port=port, work_root=work)
    second = apache_mode.present_in_config(config, [("www.shop.example", TOKEN_B, KEY_B)], port=port, work_root=work)
    assert challenge(port, "shop.example", TOKEN_A) == (200, KEY_A)
    assert challenge(port, "www.shop.example", TOKEN_B) == (200, KEY_B)
    apache_mode.restore(first)
    assert challenge(port, "www.shop.example", TOKEN_B) == (200, KEY_B)
    apache_mode.restore(second)
    assert tree_digest(config.parent) == before
    assert left_in(work) == []


def test_what_a_worker_killed_before_storing_left_is_removed_by_the_next_presentation(hand_made_apache, readable_dir):
    config, port = hand_made_apache
    work = readable_dir / "work"
    before = tree_digest(config.parent)
    assert in_a_child(present_and_get_killed_before_storing, apache_mode, config,
                      [("shop.example", TOKEN_A, KEY_A)], port, work) == -signal.SIGKILL
    assert challenge(port, "shop.example", TOKEN_A) == (200, KEY_A)
    for answers_dir in work.glob("config-*/present-*/"):  # someone even cleared the panel's directory:
        shutil.rmtree(answers_dir)
    assert tree_digest(config.parent) != before and apache_accepts(config)  # the include left behind harms nothing

    state = apache_mode.present_in_config(config, [("blog.example", TOKEN_B, KEY_B)], port=port, work_root=work)
    assert challenge(port, "blog.example", TOKEN_B) == (200, KEY_B)
    apache_mode.restore(state)

    assert tree_digest(config.parent) == before
    assert left_in(work) == []
    assert apache_accepts(config)
