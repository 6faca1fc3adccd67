"""http-01-nginx against a real nginx with a hand-written multi-server config on high ports."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from certs.challenges import nginx_mode
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
