"""Settings for a private nginx under a test's temporary directory, on free loopback ports."""

from pathlib import Path

from .ports import free_port


def use_private_nginx(settings, tmp_path: Path, listen_address: str | None = "127.0.0.1") -> Path:
    """Point the panel's nginx settings at tmp_path (config, vhosts, challenges, certificates);
    returns the nginx prefix. listen_address=None leaves NGINX_LISTEN_ADDRESS as it is."""
    prefix = tmp_path / "nginx"
    settings.NGINX_PRIVATE = True
    settings.NGINX_PREFIX = prefix
    settings.NGINX_CONF = prefix / "nginx.conf"
    settings.NGINX_VHOST_DIR = prefix / "sites"
    settings.NGINX_HTTP_PORT = free_port()
    settings.NGINX_HTTPS_PORT = free_port()
    if listen_address is not None:
        settings.NGINX_LISTEN_ADDRESS = listen_address
    settings.ACME_CHALLENGE_DIR = tmp_path / "challenges"
    settings.CERT_DEPLOY_DIR = tmp_path / "certs"
    return prefix
