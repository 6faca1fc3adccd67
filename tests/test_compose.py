"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the official Compose Specification JSON schema,
vendored in tests/data/compose-spec.json (see tests/data/README.md for its origin), and then
checked for what CertPanel needs from it. No Django involved.
"""

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

SERVICES = {"web", "worker", "deploy", "beat", "redis", "postgres", "nginx"}
PANEL_SERVICES = ("web", "worker", "deploy", "beat")

# An environment variable whose name says it holds a secret.
SECRET_NAME = re.compile(r"SECRET|KEY|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
# A value that is only a required/plain interpolation: ${VAR}, ${VAR:?msg}, ${VAR?msg}.
# Not ${VAR:-default}: a default would be a literal secret in the file.
SECRET_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")


@pytest.fixture(scope="module")
def compose():
    with COMPOSE_FILE.open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def schema():
    with SCHEMA_FILE.open() as f:
        return json.load(f)


def validator_class(schema):
    """The validator the schema's $schema names (the compose schema says draft-07)."""
    dialect = schema.get("$schema", "").rstrip("#").replace("http://", "https://")
    known = {
        "https://json-schema.org/draft-07/schema": jsonschema.Draft7Validator,
        "https://json-schema.org/draft/2019-09/schema": jsonschema.Draft201909Validator,
        "https://json-schema.org/draft/2020-12/schema": jsonschema.Draft202012Validator,
    }
    return known.get(dialect) or jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)


def schema_errors(document, schema):
    cls = validator_class(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))


def environment(service):
    """A service's environment as a dict, whether the file uses the map or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: ("" if value is None else str(value)) for key, value in env.items()}


def volume_at(service, target):
    """The named volume (or host path) a service mounts at target, or None."""
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            path = rest.split(":", 1)[0]
        else:
            source, path = volume.get("source"), volume.get("target")
        if path == target:
            return source
    return None


# --- the schema itself -------------------------------------------------------------------


def test_vendored_schema_is_the_compose_specification(schema):
    assert schema["title"] == "Compose Specification"
    assert "services" in schema["properties"]
    validator_class(schema).check_schema(schema)


# --- docker-compose.yml against the schema -----------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose, schema):
    errors = schema_errors(compose, schema)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def _break_ports_as_string(doc):
    doc["services"]["nginx"]["ports"] = "80"


def _break_unknown_top_level_key(doc):
    doc["servicez"] = {}


def _break_unknown_service_key(doc):
    doc["services"]["web"]["comand"] = "gunicorn"


def _break_healthcheck_interval(doc):
    doc["services"]["postgres"]["healthcheck"]["interval"] = 5  # a duration is a string: "5s"


def _break_depends_on_condition(doc):
    doc["services"]["worker"]["depends_on"]["postgres"]["condition"] = "service_ready"


@pytest.mark.parametrize(
    "breaker",
    [
        _break_ports_as_string,
        _break_unknown_top_level_key,
        _break_unknown_service_key,
        _break_healthcheck_interval,
        _break_depends_on_condition,
    ],
)
def test_a_broken_compose_file_fails_validation(compose, schema, breaker):
    broken = copy.deepcopy(compose)
    breaker(broken)
    assert schema_errors(broken, schema), f"{breaker.__name__}: the schema accepted a broken file"


# --- what CertPanel needs from it ----------------------------------------------------------


def test_the_services_exist(compose):
    assert SERVICES <= set(compose["services"])


def test_panel_services_share_one_build_and_the_panel_env_anchor(compose):
    anchor = compose["x-panel-env"]
    for name in PANEL_SERVICES:
        service = compose["services"][name]
        assert service.get("build") in (".", {"context": "."}), name
        assert environment(service) == {k: str(v) for k, v in anchor.items()}, name


@pytest.mark.parametrize("name", PANEL_SERVICES)
def test_panel_services_set_database_and_redis_urls(compose, name):
    env = environment(compose["services"][name])
    assert env["DATABASE_URL"].startswith("postgres://certpanel:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/certpanel")
    assert env["REDIS_URL"] == "redis://redis:6379/0"


def test_panel_services_set_every_variable_the_app_reads(compose):
    needed = {
        "CERTPANEL_DATA_DIR", "DATABASE_URL", "REDIS_URL", "NGINX_BIN", "NGINX_CONF",
        "NGINX_VHOST_DIR", "NGINX_HTTP_PORT", "NGINX_HTTPS_PORT", "CERTPANEL_CHALLENGE_DIR",
        "CERTPANEL_CERT_DIR", "CERTPANEL_CA_BUNDLE", "CERTPANEL_DNS_RESOLVERS", "CERTPANEL_NGINX_RESOLVERS",
        "CERTPANEL_ALLOWED_ROOTS", "CERTPANEL_SECRET_KEY", "CERTPANEL_ENCRYPTION_KEYS",
        "CERTPANEL_ALLOWED_HOSTS",
    }
    for name in PANEL_SERVICES:
        assert needed <= set(environment(compose["services"][name])), name


def test_commands(compose):
    services = compose["services"]

    def words(service):
        command = service["command"]
        return command.split() if isinstance(command, str) else list(command)

    assert words(services["web"]) == ["gunicorn", "panel.wsgi:application", "-b", "0.0.0.0:8000"]
    def queues(name):
        worker = words(services[name])
        assert worker[:4] == ["celery", "-A", "panel", "worker"]
        return set(worker[worker.index("-Q") + 1].split(","))

    # As scripts/install splits them: only the deploy worker touches nginx.
    assert queues("worker") == {"acme", "default"}
    assert queues("deploy") == {"deploy"}
    assert words(services["beat"])[:4] == ["celery", "-A", "panel", "beat"]


def test_images(compose):
    services = compose["services"]
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["postgres"]["image"] == "postgres:16-alpine"
    assert services["nginx"]["image"] == "nginx:stable"


def test_postgres_has_a_healthcheck_and_a_named_volume(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["healthcheck"]["test"]
    source = volume_at(postgres, "/var/lib/postgresql/data")
    assert source in compose["volumes"], "postgres data must live in a named volume"


def test_nginx_publishes_80_and_443(compose):
    ports = [str(p) for p in compose["services"]["nginx"]["ports"]]
    assert any(p.split(":")[-1].split("/")[0] == "80" for p in ports)
    assert any(p.split(":")[-1].split("/")[0] == "443" for p in ports)


@pytest.mark.parametrize("variable", ["NGINX_VHOST_DIR", "CERTPANEL_CHALLENGE_DIR", "CERTPANEL_CERT_DIR"])
def test_nginx_shares_the_panel_directories_at_the_same_paths(compose, variable):
    services = compose["services"]
    path = environment(services["worker"])[variable]
    source = volume_at(services["nginx"], path)
    assert source in compose["volumes"], f"nginx does not mount a named volume at {path}"
    for name in ("web", "worker", "deploy"):
        assert volume_at(services[name], path) == source, f"{name} and nginx see different {path}"


def test_nginx_and_the_worker_use_one_main_config(compose):
    services = compose["services"]
    conf = environment(services["worker"])["NGINX_CONF"]
    for name in ("nginx", *PANEL_SERVICES):
        targets = {c["target"]: c["source"] for c in services[name].get("configs", []) if isinstance(c, dict)}
        assert targets.get(conf) == "nginx_conf", f"{name} lacks {conf}"
    assert "-c" in services["nginx"]["command"] and conf in services["nginx"]["command"]


def test_the_deploy_worker_can_reload_nginx_in_the_nginx_container(compose):
    services = compose["services"]
    assert services["deploy"]["pid"] == "service:nginx"
    assert "pid" not in services["worker"]
    content = compose["configs"]["nginx_conf"]["content"]
    pid_dir = str(Path(re.search(r"^\s*pid\s+(\S+);", content, re.M).group(1)).parent)
    assert volume_at(services["deploy"], pid_dir) == volume_at(services["nginx"], pid_dir) is not None
    # Signalling needs the same uid on both sides.
    assert services["deploy"]["user"] == services["nginx"]["user"]


def test_the_file_explains_the_deploy_worker_on_the_nginx_node():
    head = COMPOSE_FILE.read_text().split("\nname:", 1)[0].lower()
    assert "reload" in head and "nginx container" in head
    assert "deploy" in head and "every nginx server" in head


# --- secrets --------------------------------------------------------------------------------


def _all_environments(compose):
    yield "x-panel-env", {k: str(v) for k, v in compose["x-panel-env"].items()}
    for name, service in compose["services"].items():
        yield name, environment(service)


def test_no_literal_secrets_in_environment(compose):
    for owner, env in _all_environments(compose):
        for key, value in env.items():
            if SECRET_NAME.search(key):
                assert SECRET_INTERPOLATION.match(value), f"{owner}: {key} must be ${{VAR}} or ${{VAR:?msg}}, got {value!r}"
            # A password inside a URL must be an interpolation too.
            userinfo = re.match(r"^[a-z][a-z0-9+.-]*://([^@/]*)@", value)
            if userinfo and ":" in userinfo.group(1):
                password = userinfo.group(1).split(":", 1)[1]
                assert SECRET_INTERPOLATION.match(password), f"{owner}: {key} has a literal password"


def test_no_service_reads_secrets_from_a_committed_file(compose):
    for name, service in compose["services"].items():
        env_files = service.get("env_file", [])
        env_files = [env_files] if isinstance(env_files, (str, dict)) else env_files
        for item in env_files:
            path = item if isinstance(item, str) else item["path"]
            assert Path(path).name == ".env", f"{name}: env_file {path}"
    assert ".env" in (ROOT / ".gitignore").read_text().split() or "/.env" in (ROOT / ".gitignore").read_text().split()


def test_every_dollar_is_an_interpolation_or_escaped():
    # Compose interpolates $VAR and ${VAR} everywhere, including the inline nginx config;
    # a stray nginx variable such as $host would silently become an empty string.
    text = COMPOSE_FILE.read_text()
    stray = re.findall(r"(?<!\$)\$(?![{$])\S*", text.replace("$$", ""))
    assert not stray, stray


# --- the inline nginx main config and the Dockerfile --------------------------------------


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_inline_nginx_main_config_passes_nginx_t(compose, tmp_path):
    content = compose["configs"]["nginx_conf"]["content"]
    if not Path("/etc/nginx/mime.types").is_file():
        pytest.skip("/etc/nginx/mime.types is missing")
    # Keep what nginx -t creates (temp directories, the pid file it opens) inside tmp_path.
    content = content.replace("/tmp/nginx-", f"{tmp_path}/nginx-")
    content = content.replace("/run/certpanel-nginx/", f"{tmp_path}/")
    conf = tmp_path / "nginx.conf"
    conf.write_text(content)
    result = subprocess.run(
        [shutil.which("nginx"), "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and froms[-1] == "python:3.11-slim"
    assert re.search(r"pip install .*-r requirements\.txt", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0"), "the image should run as a non-root user"
    # The image copies only the project's own files: never .env, .venv or data/.
    assert not re.search(r"^COPY\s+\.\s+(\.|/app)\s*$", text, re.M)
