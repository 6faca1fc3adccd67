"""The panel's own vhost: nginx serves the panel over HTTPS on settings.PANEL_PORT and proxies to
gunicorn (settings.PANEL_UPSTREAM), with the panel's own certificate once it has one
(panel.models.PanelHttps) and a self-signed one until then. On the managed HTTP port, the panel's
domain answers HTTP-01, so the panel gets its certificate like any site.

Applied like a site's vhost: stage -> keep the old file -> swap -> nginx -t -> reload (or roll
back). Written at start (write_nginx_config, runpanel) and by the deploy worker whenever the
panel's certificate gets a new version or its domain changes (panel.deployment.dispatch).
"""

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError

from panel.deployment.nginx import apply
from panel.deployment.nginx.render import CertificateFiles, Layout, UnsafeValue, _render, check_nginx_safe
from panel.models import PanelHttps
from panel.toolkit import pem
from panel.toolkit.files import write_atomic

log = logging.getLogger(__name__)

CONFIG_NAME = "000-certpanel-panel.conf"


def listen_addresses(layout: Layout, port: int) -> list[str]:
    """What each `listen` line of the panel's vhost names, for `port`. The one place that decides
    it, so the panel follows the sites' own listen rules (IPv4 and/or IPv6) when they change."""
    return layout.listen_addresses(port)


def proxy_pass_url(upstream: str) -> str:
    """nginx's proxy_pass for gunicorn's address: host:port, or unix:/path (a socket)."""
    if upstream.startswith("unix:"):
        return f"http://{upstream}:"
    return f"http://{upstream}"


def render_panel_vhost(layout: Layout, port: int, upstream: str, domain: str, cert_files: CertificateFiles) -> str:
    """The vhost text. Pure; `domain` was validated when stored, `upstream` at start-up, and
    raises UnsafeValue if either (or a certificate path) is nothing nginx may be given (a
    database written past validation: render.check_nginx_safe)."""
    proxy_pass = proxy_pass_url(upstream)
    check_nginx_safe(server_name=domain, proxy_pass=proxy_pass, ssl_certificate=cert_files.fullchain,
                     ssl_certificate_key=cert_files.key)
    return _render(
        "panel.conf",
        listen_panel=listen_addresses(layout, port),
        listen_http=listen_addresses(layout, layout.http_port),
        http2_directive=layout.http2_directive,
        server_name=domain or "_",
        domain=domain,
        port_suffix="" if port == 443 else f":{port}",
        fullchain_path=cert_files.fullchain,
        key_path=cert_files.key,
        snippets_dir=layout.snippets_dir,
        proxy_pass=proxy_pass,
    )


# --- the self-signed certificate, until the panel has its own


def self_signed_files() -> CertificateFiles:
    # Beside the certificates' own files: the deploy side writes there, and nginx reads there.
    base = Path(settings.CERT_DEPLOY_DIR) / "panel-self-signed"
    return CertificateFiles(fullchain=base / "self-signed.pem", key=base / "self-signed.key")


def ensure_self_signed() -> CertificateFiles:
    """The self-signed certificate's files, made on first need (an EC P-256 key, 0600)."""
    files = self_signed_files()
    if files.fullchain.exists() and files.key.exists():
        return files
    files.key.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(files.key.parent, 0o700)
    key_pem, cert_pem = pem.self_signed("CertPanel (self-signed)", dns_names=["localhost"],
                                        ip_addresses=["127.0.0.1", "::1"])
    write_atomic(files.key, key_pem, mode=0o600)
    write_atomic(files.fullchain, cert_pem, mode=0o644)
    return files


# --- applying


def _panel_row() -> PanelHttps:
    """The panel's HTTPS row; none yet before the first migrate (the installer writes nginx's
    configuration before it migrates): then the self-signed certificate, and no domain."""
    try:
        return PanelHttps.load()
    except DatabaseError:
        log.warning("the panel's HTTPS settings cannot be read (not migrated yet?): serving it self-signed")
        return PanelHttps(pk=1)


def config_path(layout: Layout) -> Path:
    return layout.vhost_dir / CONFIG_NAME


def preview() -> str:
    """The vhost install() would write now (without writing anything, not even certificates)."""
    current, row = apply.layout(), _panel_row()
    version = row.serving_version()
    files = apply.certificate_files(version) if version else self_signed_files()
    return render_panel_vhost(current, settings.PANEL_PORT, settings.PANEL_UPSTREAM, row.domain, files)


def is_current() -> bool:
    """Whether the vhost on disk is the one install() would write now (nothing to do)."""
    path = config_path(apply.layout())
    if not settings.PANEL_PORT:
        return not path.exists()
    try:
        return path.exists() and path.read_text() == preview()
    except UnsafeValue:
        return False  # install() says why


def install(reload=True) -> tuple[bool, str]:
    """Write the panel's vhost as the database says it should be now, and have nginx reload
    (reload=False: nginx is about to start). (ok, nginx's words if it refused, or the invalid
    stored value: the previous vhost stays). With the panel port off, a vhost left from before is removed.
    Raises apply.CertificateFilesNotWritten when the certificate's files cannot be written."""
    current = apply.layout()
    path = config_path(current)
    with apply.config_lock():
        if not settings.PANEL_PORT:
            changed = path.exists()
            path.unlink(missing_ok=True)
        else:
            apply.ensure_shared_files(current)
            row = _panel_row()
            version = row.serving_version()
            files = apply.write_certificate_files(version) if version else ensure_self_signed()
            try:
                text = render_panel_vhost(current, settings.PANEL_PORT, settings.PANEL_UPSTREAM, row.domain, files)
            except UnsafeValue as exc:
                log.warning("the panel's vhost is not written; the previous one stays: %s", exc)
                return False, str(exc)
            if path.exists() and path.read_text() == text:
                return True, ""
            ok, output = _swap_in(path, text)
            if not ok:
                log.warning("nginx rejected the panel's vhost; the previous one stays:\n%s", output)
                return False, output
            changed = True
    if changed and reload:
        apply.request_reload()
    return True, ""


def _swap_in(path: Path, text: str) -> tuple[bool, str]:
    """Stage, keep the old file, swap, nginx -t; put the old file back if nginx refuses."""
    staged, backup = path.with_name(path.name + ".new"), path.with_name(path.name + ".old")
    write_atomic(staged, text)
    had_old = path.exists()
    if had_old:
        os.replace(path, backup)
    os.replace(staged, path)
    ok, output = apply.test_config()
    if ok:
        backup.unlink(missing_ok=True)
    elif had_old:
        os.replace(backup, path)
    else:
        path.unlink(missing_ok=True)
    return ok, output
