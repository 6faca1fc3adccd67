"""http-01-nginx against a real nginx with a hand-written multi-server config on high ports."""

import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from certs.challenges import config_edit, nginx_mode
from certs.challenges.config_edit import ServerConfigError, http_get
from tests.support.ports import free_port
from tests.support.process import wait_until

TOKEN_A, TOKEN_B = "tokenA_" + "a" * 36, "tokenB-" + "b" * 36
KEY_A, KEY_B = f"{TOKEN_A}.thumbprintA", f"{TOKEN_B}.thumbprintB"


def tree_digest(root: Path) -> dict:
    """Every file's and link's bytes, mode and target under root: what 'byte-identical' means."""
    digest = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            digest[str(path)] = ("link", os.readlink(path))
        elif path.is_file():
            digest[str(path)] = (oct(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            digest[str(path)] = (oct(st.st_mode), "dir")
    return digest


@pytest.fixture
def hand_made_nginx(tmp_path, settings):
    """An nginx as an admin might have written it: main file, conf.d, a sites-enabled symlink."""
    port = free_port()
    conf = tmp_path / "etc"
    (conf / "conf.d").mkdir(parents=True)
    (conf / "sites-available").mkdir()
    (conf / "sites-enabled").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (conf / "nginx.conf").write_text(
        f"pid {run}/nginx.pid;\nerror_log {run}/error.log;\nevents {{ worker_connections 64; }}\n"
        "http {\n    access_log off;\n    default_type application/octet-stream;\n"
        "    include conf.d/*.conf;\n    include sites-enabled/*;\n"
        f"    server {{ listen 127.0.0.1:{port} default_server; return 444; }}\n}}\n"
    )
    # Force-HTTPS block with a server-level return, the usual hand-made port-80 block.
    (conf / "conf.d" / "shop.conf").write_text(
        f"server {{\n    listen 127.0.0.1:{port};\n    server_name shop.example www.shop.example;\n"
        "    return 301 https://$host$request_uri;\n}\n"
        f"server {{ listen 127.0.0.1:{port}; server_name *.blog.example; # wildcard\n"
        "    location / { return 200 \"blog\\n\"; }\n}\n"
    )
    (conf / "sites-available" / "app").write_text(
        f"server {{\n\tlisten 127.0.0.1:{port};\n\tserver_name app.example;\n"
        "\tlocation / { return 200 'app'; }\n}\n"
    )
    os.chmod(conf / "sites-available" / "app", 0o640)
    (conf / "sites-enabled" / "app").symlink_to("../sites-available/app")
    settings.NGINX_BIN = "nginx"
    config = conf / "nginx.conf"
    subprocess.run(["nginx", "-c", str(config)], check=True)
    wait_until(lambda: (run / "nginx.pid").exists(), 10, "nginx to start")
    yield config, port
    subprocess.run(["nginx", "-c", str(config), "-s", "quit"], check=False)


def left_in(work_root: Path) -> list[str]:
    """What the panel's presentations left in their directory: each config keeps only its lock."""
    return [str(p.relative_to(work_root)) for p in sorted(work_root.rglob("*"))
            if not (p.is_dir() and p.parent == work_root and p.name.startswith("config-")) and p.name != "lock"]


def get(port, host, path="/"):
    return http_get("127.0.0.1", port, host, path)


def challenge(port, host, token):
    return get(port, host, f"/.well-known/acme-challenge/{token}")


def test_present_answers_through_each_serving_block_and_restore_puts_every_byte_back(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    before = tree_digest(config.parent)
    answers_before = {h: get(port, h) for h in ("shop.example", "x.blog.example", "app.example")}

    state = nginx_mode.present_in_config(
        config, [("www.shop.example", TOKEN_A, KEY_A), ("app.example", TOKEN_B, KEY_B)],
        port=port, work_root=tmp_path / "work",
    )

    assert challenge(port, "www.shop.example", TOKEN_A) == (200, KEY_A)  # despite the server-level 301
    assert challenge(port, "app.example", TOKEN_B) == (200, KEY_B)
    assert get(port, "app.example") == (200, "app")  # the site itself goes on serving
    assert tree_digest(config.parent) != before

    nginx_mode.restore(state)

    assert tree_digest(config.parent) == before
    assert (config.parent / "sites-enabled" / "app").is_symlink()
    assert left_in(tmp_path / "work") == []
    wait_until(lambda: challenge(port, "www.shop.example", TOKEN_A)[0] == 301, 10, "the old config to serve again")
    assert {h: get(port, h) for h in answers_before} == answers_before


def test_a_wildcard_name_and_the_default_server_serve_names_without_an_exact_block(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    state = nginx_mode.present_in_config(
        config, [("x.blog.example", TOKEN_A, KEY_A), ("unknown.example", TOKEN_B, KEY_B)],
        port=port, work_root=tmp_path / "work",
    )
    try:
        assert challenge(port, "x.blog.example", TOKEN_A) == (200, KEY_A)
        assert challenge(port, "unknown.example", TOKEN_B) == (200, KEY_B)
    finally:
        nginx_mode.restore(state)


def test_no_block_on_the_port_is_a_clear_error_and_changes_nothing(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    before = tree_digest(config.parent)
    with pytest.raises(ServerConfigError, match=f"shop.example: no server block .* listens on port {port + 1}"):
        nginx_mode.present_in_config(config, [("shop.example", TOKEN_A, KEY_A)], port=port + 1,
                                     work_root=tmp_path / "work")
    assert tree_digest(config.parent) == before


def test_a_failure_half_way_restores_every_file(hand_made_nginx, tmp_path, monkeypatch):
    config, port = hand_made_nginx
    before = tree_digest(config.parent)

    real_reload, reloads = nginx_mode._reload, []

    def first_reload_fails(config_path, pid_file):
        reloads.append(config_path)
        if len(reloads) == 1:
            raise ServerConfigError("nginx could not reload: simulated")
        real_reload(config_path, pid_file)

    monkeypatch.setattr(nginx_mode, "_reload", first_reload_fails)
    with pytest.raises(ServerConfigError, match="simulated"):
        nginx_mode.present_in_config(
            config, [("shop.example", TOKEN_A, KEY_A), ("app.example", TOKEN_B, KEY_B)],
            port=port, work_root=tmp_path / "work",
        )
    assert tree_digest(config.parent) == before
    assert left_in(tmp_path / "work") == []
    assert get(port, "shop.example")[0] == 301


def test_a_snippet_nginx_rejects_is_reported_and_every_file_restored(hand_made_nginx, tmp_path, monkeypatch):
    config, port = hand_made_nginx
    before = tree_digest(config.parent)
    monkeypatch.setattr(nginx_mode, "_snippet", lambda answers: "no_such_directive on;\n")
    with pytest.raises(ServerConfigError, match="(?s)nginx -t rejected the config.*no_such_directive"):
        nginx_mode.present_in_config(config, [("app.example", TOKEN_A, KEY_A)], port=port, work_root=tmp_path / "work")
    assert tree_digest(config.parent) == before
    assert get(port, "app.example") == (200, "app")


def test_answers_that_are_not_acme_text_never_reach_the_config(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    before = tree_digest(config.parent)
    with pytest.raises(ServerConfigError, match="not base64url"):
        nginx_mode.present_in_config(
            config, [("app.example", TOKEN_A, f'{TOKEN_A}.x"; return 200 "owned')], port=port,
            work_root=tmp_path / "work",
        )
    assert tree_digest(config.parent) == before


def test_a_block_listening_on_ipv4_and_ipv6_answers_the_challenge_over_both(tmp_path, settings):
    # As the panel writes its own vhosts, and as Debian's default site does: one line per family.
    port = free_port()  # free on 127.0.0.1 and ::1
    run = tmp_path / "run"
    run.mkdir()
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"pid {run}/nginx.pid;\nerror_log {run}/error.log;\nevents {{ worker_connections 64; }}\n"
        "http {\n    access_log off;\n"
        f"    server {{ listen 127.0.0.1:{port} default_server; listen [::1]:{port} default_server; return 444; }}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        listen [::1]:{port};\n"
        "        server_name dual.example;\n        return 301 https://$host$request_uri;\n    }\n}\n")
    settings.NGINX_BIN = "nginx"
    subprocess.run(["nginx", "-c", str(config)], check=True)
    try:
        wait_until(lambda: (run / "nginx.pid").exists(), 10, "nginx to start")
        state = nginx_mode.present_in_config(config, [("dual.example", TOKEN_A, KEY_A)], port=port,
                                             work_root=tmp_path / "work")
        try:
            for address in ("127.0.0.1", "::1"):
                assert http_get(address, port, "dual.example", f"/.well-known/acme-challenge/{TOKEN_A}") == (
                    200, KEY_A)
        finally:
            nginx_mode.restore(state)
    finally:
        subprocess.run(["nginx", "-c", str(config), "-s", "quit"], check=False)


# --- one presentation at a time per config, and nothing left by a worker killed half-way


def in_a_child(target, *args):
    """Run target(*args) in a forked process, as another Celery worker would; its exit code."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(60)
    return child.exitcode


def present_and_get_killed_before_storing(mode, config, answers, port, work_root):
    with mode.presenting(config, answers, port=port, work_root=work_root):
        os.kill(os.getpid(), signal.SIGKILL)


def nginx_accepts(config: Path) -> bool:
    return subprocess.run(["nginx", "-t", "-c", str(config)], capture_output=True).returncode == 0


def test_what_a_worker_killed_before_storing_left_is_removed_by_the_next_presentation(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    work = tmp_path / "work"
    before = tree_digest(config.parent)
    exit_code = in_a_child(present_and_get_killed_before_storing, nginx_mode, config,
                           [("app.example", TOKEN_A, KEY_A)], port, work)
    assert exit_code == -signal.SIGKILL
    assert challenge(port, "app.example", TOKEN_A) == (200, KEY_A)  # it had presented: its include is in the config
    for snippet_dir in work.glob("config-*/present-*/"):  # someone even cleared the panel's directory:
        shutil.rmtree(snippet_dir)
    assert tree_digest(config.parent) != before and nginx_accepts(config)  # the include left behind harms nothing

    state = nginx_mode.present_in_config(config, [("shop.example", TOKEN_B, KEY_B)], port=port, work_root=work)
    assert challenge(port, "shop.example", TOKEN_B) == (200, KEY_B)
    assert challenge(port, "app.example", TOKEN_A) == (200, "app")  # the killed worker's answer is gone
    nginx_mode.restore(state)

    assert tree_digest(config.parent) == before
    assert left_in(work) == []
    assert nginx_accepts(config)


def test_what_a_worker_killed_before_storing_left_is_removed_by_the_next_clean_up(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    work = tmp_path / "work"
    before = tree_digest(config.parent)
    stored = nginx_mode.present_in_config(config, [("shop.example", TOKEN_A, KEY_A)], port=port, work_root=work)
    assert in_a_child(present_and_get_killed_before_storing, nginx_mode, config,
                      [("shop.example", TOKEN_B, KEY_B)], port, work) == -signal.SIGKILL
    assert challenge(port, "shop.example", TOKEN_B) == (200, KEY_B)

    nginx_mode.restore(stored)

    assert tree_digest(config.parent) == before
    assert left_in(work) == []
    wait_until(lambda: challenge(port, "shop.example", TOKEN_B)[0] == 301, 10, "the old config to serve again")


def test_a_presentation_waits_until_the_one_before_on_that_config_has_stored_its_state(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    work = tmp_path / "work"
    before = tree_digest(config.parent)
    storing, stored, states = threading.Event(), threading.Event(), {}

    def first():
        with nginx_mode.presenting(config, [("app.example", TOKEN_A, KEY_A)], port=port, work_root=work) as state:
            storing.set()
            stored.wait(30)  # the order saving its state (slowly)
            states["first"] = state

    def second():
        states["second"] = nginx_mode.present_in_config(config, [("shop.example", TOKEN_B, KEY_B)], port=port,
                                                        work_root=work)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert storing.wait(30)
    while_first_stores = tree_digest(config.parent)
    threads[1].start()
    threads[1].join(1.0)
    assert threads[1].is_alive() and tree_digest(config.parent) == while_first_stores
    stored.set()
    for thread in threads:
        thread.join(30)

    assert challenge(port, "app.example", TOKEN_A) == (200, KEY_A)
    assert challenge(port, "shop.example", TOKEN_B) == (200, KEY_B)
    nginx_mode.restore(states["first"])  # the first clean-up keeps the second presentation
    assert challenge(port, "app.example", TOKEN_A) == (200, "app")
    assert challenge(port, "shop.example", TOKEN_B) == (200, KEY_B)
    nginx_mode.restore(states["second"])
    assert tree_digest(config.parent) == before
    assert left_in(work) == []


def present_in_turn(start, results, config, answers, port, work_root):
    start.wait(30)
    try:
        results.put(nginx_mode.present_in_config(config, answers, port=port, work_root=work_root))
    except ServerConfigError as exc:
        results.put(str(exc))


def test_two_processes_presenting_on_one_config_at_once_are_both_served(hand_made_nginx, tmp_path):
    config, port = hand_made_nginx
    work = tmp_path / "work"
    before = tree_digest(config.parent)
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    children = [context.Process(target=present_in_turn, args=(start, results, config, [answer], port, work))
                for answer in (("shop.example", TOKEN_A, KEY_A), ("www.shop.example", TOKEN_B, KEY_B))]  # one block
    for child in children:
        child.start()
    states = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
    assert all(isinstance(state, dict) for state in states), states

    assert challenge(port, "shop.example", TOKEN_A) == (200, KEY_A)
    assert challenge(port, "www.shop.example", TOKEN_B) == (200, KEY_B)
    for state in states:
        nginx_mode.restore(state)
    assert tree_digest(config.parent) == before
    assert left_in(work) == []


def test_two_names_of_one_config_share_its_lock(tmp_path):
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "nginx.conf"
    config.write_text("events {}\n")
    (tmp_path / "nginx.conf").symlink_to(config)
    other = tmp_path / "etc" / "other.conf"
    work = tmp_path / "work"
    assert config_edit._config_dir(work, tmp_path / "nginx.conf") == config_edit._config_dir(work, config)
    assert config_edit._config_dir(work, other) != config_edit._config_dir(work, config)


def test_a_state_stored_by_an_earlier_version_is_left_for_the_admin_with_what_to_remove(tmp_path):
    earlier = {"config": "/etc/nginx/nginx.conf", "work_dir": str(tmp_path / "present-x1"),
               "files": [{"path": "/etc/nginx/sites-enabled/shop", "original": ""}]}
    with pytest.raises(ServerConfigError, match=f"remove its include line of {tmp_path / 'present-x1'} by hand"):
        nginx_mode.restore(earlier)
