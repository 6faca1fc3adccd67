"""This server's nginx, a deploy destination: apply a site's config safely: stage -> keep the
old file -> swap -> nginx -t -> reload.

If `nginx -t` fails, the previous file comes back, the site records nginx's
error, and every other site keeps serving. The outcome is returned; the caller
(panel.deployment.dispatch) records it on the certificate and tells the owner. Applies are serialised with a file
lock on the vhost directory (nginx -t tests the whole configuration); reloads
are requested, not run: at once when nginx is not reloading, else one follow-up shared by
every deploy until the running reload ends (request_reload).
"""

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_noop

from panel.deployment.nginx.render import (CertificateFiles, Layout, UnsafeValue, check_site_values,
                                           render_private_main, render_site, render_snippets)
from panel.models import Site
from panel.toolkit import access, outbound, validation
from panel.toolkit.files import discard_leftovers, file_lock, write_atomic
from panel.toolkit.task_queue import NamedTask

log = logging.getLogger(__name__)

RELOAD_NGINX = NamedTask("panel.tasks.reload_nginx")


class NginxError(Exception):
    pass


class CertificateFilesNotWritten(Exception):
    """A certificate version's files could not be written (a full disk, a read-only or
    immutable directory): the site keeps its previous config; the apply is retried.
    `site` and `version`, once known: the site as applied and the version nginx could not be given."""

    def __init__(self, message, site=None, version=None):
        super().__init__(message)
        self.site, self.version = site, version


# Why an apply failed, each followed on the page by nginx's or the system's own words.
NGINX_REJECTED = gettext_noop("nginx rejected this site's configuration; the previous one is still "
                              "in use.")
BROKEN_ELSEWHERE = gettext_noop("nginx's configuration is broken elsewhere, so no site can be "
                                "changed until an administrator fixes it; the previous config of "
                                "this site stays in place.")
UPSTREAM_REFUSED = gettext_noop("The site's upstream is refused by the server's outbound policy; "
                                "nginx keeps the site's previous config.")
ROOT_REFUSED = gettext_noop("The site's document root is, holds or lies inside a system directory or "
                            "the panel's data: nginx no longer serves the site. Choose another root.")
UNSAFE_VALUE = gettext_noop("The site's stored %(field)s value is invalid: it holds a space, a quote, "
                            "one of ; { } # $ \\ or a control character, which nginx must never be "
                            "given. nginx keeps the site's previous config; save the site again with "
                            "a valid value.")
FILES_NOT_WRITTEN = gettext_noop("The certificate's files could not be written; nginx keeps the "
                                 "site's previous config. Check the disk space and the permissions "
                                 "of the data directory.")


@dataclass(frozen=True)
class SiteApplied:
    """What applying a site's config came to: `ok` when nginx accepted it (and serves
    `version`, if the site has a certificate); otherwise `error`, nginx's words for the owner.
    `site` is the site as it was applied (read under the lock), None if it was deleted."""

    ok: bool
    error: str = ""
    version: object = None
    site: object = None


@lru_cache(maxsize=4)
def nginx_version(binary):
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)


def layout() -> Layout:
    return Layout(
        vhost_dir=Path(settings.NGINX_VHOST_DIR),
        challenge_dir=Path(settings.ACME_CHALLENGE_DIR),
        http_port=settings.NGINX_HTTP_PORT,
        https_port=settings.NGINX_HTTPS_PORT,
        listen_address=settings.NGINX_LISTEN_ADDRESS,
        listen_families=settings.NGINX_LISTEN_FAMILIES,
        http2_directive=nginx_version(settings.NGINX_BIN) >= (1, 25, 1),
    )


def nginx_command(*args):
    command = [settings.NGINX_BIN]
    if settings.NGINX_PRIVATE:
        prefix = Path(settings.NGINX_PREFIX)
        command += ["-p", f"{prefix}/", "-e", str(prefix / "logs" / "error.log")]
    return command + ["-c", str(settings.NGINX_CONF), *args]


def _run(*args):
    result = subprocess.run(nginx_command(*args), capture_output=True, text=True, timeout=60)
    return result.returncode == 0, (result.stderr + result.stdout).strip()


def test_config():
    """(ok, output) of `nginx -t` on the whole configuration."""
    return _run("-t")


def config_lock():
    """Held while a vhost changes or nginx reloads: nginx -t tests the whole configuration."""
    vhost_dir = Path(settings.NGINX_VHOST_DIR)
    vhost_dir.mkdir(parents=True, exist_ok=True)
    return file_lock(vhost_dir / ".certpanel.lock")


def ensure_shared_files(current: Layout):
    for path, text in render_snippets(current).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
    # HTTP-01 tokens must be readable by nginx's workers.
    Path(settings.ACME_CHALLENGE_DIR).mkdir(parents=True, exist_ok=True)
    os.chmod(settings.ACME_CHALLENGE_DIR, 0o755)


def write_private_main_config():
    """(Re)write the private nginx's main config; only when NGINX_CONF is unset."""
    prefix = Path(settings.NGINX_PREFIX)
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    current = layout()
    ensure_shared_files(current)
    main_config = Path(settings.NGINX_CONF)
    main_config.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(main_config, render_private_main(current, prefix, private_pid_file()))


def private_pid_file() -> Path:
    return Path(settings.NGINX_PREFIX) / "nginx.pid"


def certificate_files(version) -> CertificateFiles:
    """Where a certificate version lives on disk. Versioned, so a rollback finds the old files."""
    base = Path(settings.CERT_DEPLOY_DIR) / f"cert-{version.certificate_id}" / f"v{version.pk}"
    return CertificateFiles(fullchain=base / "fullchain.pem", key=base / "privkey.pem")


def write_certificate_files(version) -> CertificateFiles:
    """Raises CertificateFilesNotWritten, leaving no partial file, if the files cannot be written.
    Called under config_lock."""
    files = certificate_files(version)
    if not (files.fullchain.exists() and files.key.exists()):
        try:
            files.fullchain.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(files.fullchain.parent, 0o700)
            for path in (files.key, files.fullchain):
                discard_leftovers(path)  # a copy of the key, had a worker died while writing it
            write_atomic(files.key, version.private_key, mode=0o600)
            write_atomic(files.fullchain, version.chain_pem, mode=0o644)
        except OSError as exc:
            # nginx must never be pointed at a key without its certificate, or the reverse.
            files.key.unlink(missing_ok=True)
            raise CertificateFilesNotWritten(f"cannot write the certificate files: {exc}") from exc
    return files


def preview_site_config(site) -> str:
    """The vhost apply_site_config would install for `site` now. Writes nothing: the site
    page shows it read-only. Certificate files appear by path, never by content."""
    version = site.serving_version()
    try:
        return render_site(site, layout(), certificate_files(version) if version else None)
    except UnsafeValue as exc:
        return f"# Not rendered: {exc}\n"


def _short_error(output: str) -> str:
    """nginx's own complaint, without the 'test failed' footer."""
    lines = [line for line in output.splitlines() if "[emerg]" in line or "[alert]" in line or "[crit]" in line]
    return "\n".join(lines) or output


def vetted_upstream(site) -> tuple[str, outbound.OutboundRefused | None]:
    """(the upstream nginx is given, or why the outbound policy refuses it). A user's upstream
    host is resolved and checked here and nginx gets the checked address, never the name: nginx
    resolves names again at every reload, long after any check (panel.toolkit.outbound)."""
    if not site.proxy_pass or access.is_admin(site.owner):
        return site.proxy_pass, None
    try:
        return outbound.pinned_url(site.proxy_pass), None
    except outbound.OutboundRefused as exc:
        return "", exc


def _root_refusal(site) -> str:
    """Why nginx must not serve the site's document root (a system directory, the panel's
    data), or ""."""
    try:
        if site.root:
            validation.check_root_serves_no_secrets(site.root)
    except ValidationError as exc:
        return exc.messages[0]
    return ""


def apply_site_config(site) -> SiteApplied:
    """Render and install `site`'s vhost; nginx's verdict is the outcome.

    On failure the previous vhost is restored and the error stored on the site.
    A reload is requested (not run) on success. Raises CertificateFilesNotWritten
    (the site keeps its previous config) when the certificate files cannot be written.
    """
    current = layout()
    with config_lock():
        # Read the site under the lock: an apply that waited must not install an older
        # snapshot, nor bring back a site deleted meanwhile.
        site = Site.objects.filter(pk=site.pk).first()
        if site is None:
            return SiteApplied(ok=False)
        version = site.serving_version()
        try:
            # First: the database may hold what validation never saw (a compromised service user).
            check_site_values(site)
        except UnsafeValue as exc:
            return _unsafe(site, version, exc)
        upstream, refused = vetted_upstream(site)
        if refused:
            Site.objects.filter(pk=site.pk).update(
                config_status="failed", config_error=str(refused),
                config_failure=_failure(UPSTREAM_REFUSED, str(refused)))
            # Checked at every apply: an upstream that points inward now (a changed record, a site
            # older than the policy) stops being served. One that does not resolve at the moment
            # keeps the previous config, as any config nginx rejects does.
            if not isinstance(refused, outbound.Unresolved) and _take_down(current, site):
                request_reload()
            return SiteApplied(ok=False, error=str(refused), version=version, site=site)
        refused = _root_refusal(site)
        if refused:
            # A root stored before the rule, or a link changed since: nginx stops serving it.
            Site.objects.filter(pk=site.pk).update(config_status="failed", config_error=refused,
                                                   config_failure=_failure(ROOT_REFUSED, refused))
            if _take_down(current, site):
                request_reload()
            return SiteApplied(ok=False, error=refused, version=version, site=site)
        try:
            # Before anything is written (the upstream pinned, the certificate's paths checked too).
            text = render_site(site, current, certificate_files(version) if version else None, upstream)
        except UnsafeValue as exc:
            return _unsafe(site, version, exc)
        ensure_shared_files(current)
        try:
            if version:
                write_certificate_files(version)  # at the paths rendered: certificate_files(version)
        except CertificateFilesNotWritten as exc:
            log.warning("site %s: %s; the previous config stays", site.pk, exc)
            Site.objects.filter(pk=site.pk).update(
                config_status="failed", config_error=str(exc),
                config_failure=_failure(FILES_NOT_WRITTEN, str(exc)))
            raise CertificateFilesNotWritten(str(exc), site=site, version=version) from exc
        path = current.vhost_dir / site.config_name
        applied_custom = current.applied_custom_dir(site)
        staged = path.with_name(path.name + ".new")
        write_atomic(staged, text)
        staged_custom = _stage_custom_additions(current.custom_dir(site), applied_custom)
        backups = [_swap_in(path, staged), _swap_in(applied_custom, staged_custom)]
        started = time.monotonic()
        ok, output = test_config()
        _record_cost(time.monotonic() - started)  # what the reload it asks for will cost nginx
        for live, backup in zip((path, applied_custom), backups):
            if ok:
                _remove(backup)
            else:
                _roll_back(live, backup)
        if not ok:
            log.warning("nginx rejected the config of site %s; previous config restored:\n%s", site.pk, output)
            # Point the owner at the file they edit, not at the panel's copy of it.
            output = output.replace(f"{applied_custom}/", f"{current.custom_dir(site)}/")
    error, failure = ("", None) if ok else _error_for_site(output, site)
    Site.objects.filter(pk=site.pk).update(
        config_status="applied" if ok else "failed",
        config_error=error, config_failure=failure,
        config_applied_at=timezone.now() if ok else site.config_applied_at,
    )
    if ok:
        request_reload()
    return SiteApplied(ok=ok, error=error, version=version, site=site)


def _unsafe(site, version, exc: UnsafeValue) -> SiteApplied:
    """A stored value nginx must not be given: the site keeps its previous config, and says which."""
    log.warning("site %s: %s; the previous config stays", site.pk, exc)
    Site.objects.filter(pk=site.pk).update(config_status="failed", config_error=str(exc),
                                           config_failure=_failure(UNSAFE_VALUE, repr(exc.value), field=exc.field))
    return SiteApplied(ok=False, error=str(exc), version=version, site=site)


def _stage_custom_additions(custom_dir: Path, applied_dir: Path) -> Path:
    """A fresh copy of the site's hand-written *.conf files beside the live copy."""
    custom_dir.mkdir(parents=True, exist_ok=True)
    staged = applied_dir.with_name(applied_dir.name + ".new")
    _remove(staged)
    staged.mkdir(parents=True)
    for addition in sorted(custom_dir.glob("*.conf")):
        shutil.copyfile(addition, staged / addition.name)
    return staged


def _swap_in(live: Path, staged: Path) -> Path | None:
    """Put `staged` (a file or a directory) in place of `live`. Returns where the previous
    one was kept, None if there was none."""
    backup = live.with_name(live.name + ".old")
    _remove(backup)
    if not live.exists():
        os.replace(staged, live)
        return None
    os.replace(live, backup)
    os.replace(staged, live)
    return backup


def _roll_back(live: Path, backup: Path | None):
    _remove(live)
    if backup is not None:
        os.replace(backup, live)


def _remove(path: Path | None):
    if path is None:
        return
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _error_for_site(output: str, site) -> tuple[str, dict]:
    """nginx's complaint if it is about this site's own file, and the failure to show. Another
    file's error would tell this site's owner about someone else's config, not theirs to fix."""
    error = _short_error(output)
    if f"/{site.config_name}:" in error or f"/custom/site-{site.pk}/" in error:
        return error, _failure(NGINX_REJECTED, error)
    return BROKEN_ELSEWHERE, _failure(BROKEN_ELSEWHERE)


def _failure(message, raw="", **params):
    """A failed apply as the site page shows it in the reader's language (certs.problems)."""
    return {"message": message, "params": {**params, "raw": raw} if raw else params}


def remove_site_config(site_pk: int):
    current = layout()
    with config_lock():
        _take_down(current, Site(pk=site_pk))  # the row is deleted: only its id names its files
    request_reload()


def _take_down(current: Layout, site) -> bool:
    """Remove the site's vhost and its copy of the custom additions (under the config lock);
    returns whether a live vhost was there."""
    vhost, applied_custom = current.vhost_dir / site.config_name, current.applied_custom_dir(site)
    was_live = vhost.exists()
    for suffix in ("", ".new", ".old"):
        vhost.with_name(vhost.name + suffix).unlink(missing_ok=True)
        _remove(applied_custom.with_name(applied_custom.name + suffix))
    return was_live


RELOAD_PENDING = "nginx-reload-pending"
RELOAD_BUSY_UNTIL = "nginx-reload-busy-until"
RELOAD_WINDOW = "nginx-reload-window"
RELOAD_COST = "nginx-reload-cost"

# While reloads keep coming, each one's window is this many times the last one's (up to
# _longest_window), so a long burst (a bulk issuance) shares a few reloads: log4(burst / cost).
WINDOW_GROWTH = 4


def _record_cost(seconds: float):
    """What nginx parsing the whole configuration took (an `nginx -t`, or an `nginx -s reload`
    that parses it before it signals): what a reload costs the master, and so how long it is
    in flight. Milliseconds at 10 sites, seconds at 10,000."""
    cache.set(RELOAD_COST, seconds, timeout=None)


def reload_cost() -> float:
    """The measured cost of a reload (the latest whole-configuration parse), never below
    NGINX_RELOAD_COALESCE_SECONDS."""
    return max(cache.get(RELOAD_COST, 0.0), settings.NGINX_RELOAD_COALESCE_SECONDS)


def _longest_window() -> float:
    return max(reload_cost(), settings.NGINX_RELOAD_COALESCE_MAX_SECONDS)


def request_reload():
    """Have nginx reload. At once when no reload is queued or in flight; one queued and not
    started yet is joined (it will read this change too); one in flight gets one follow-up,
    queued to start when it ends, shared by every request until then.

    A reload is in flight for its window (reload_now): the measured cost of a reload after a
    quiet spell; WINDOW_GROWTH times the previous one while reloads keep coming."""
    wait = cache.get(RELOAD_BUSY_UNTIL, 0.0) - time.time()
    wait = min(max(0.0, wait), _longest_window())
    if cache.add(RELOAD_PENDING, 1, timeout=wait + 60):
        RELOAD_NGINX.apply_async(countdown=wait or None)


def reload_now():
    """Reload nginx now (what the reload_nginx task runs), and mark it in flight for its window.

    The window is the cost of a reload, unless this reload starts less than WINDOW_GROWTH
    times the cost after the previous window ended: then reloads come faster than nginx can
    take them without spending more than 1/(WINDOW_GROWTH+1) of its time reloading (a bulk
    issuance), and the window is WINDOW_GROWTH times the previous one, up to
    max(cost, NGINX_RELOAD_COALESCE_MAX_SECONDS). So an isolated change, or a few in a row
    (add a site, issue its certificate), reloads at once, and a burst shares a few reloads."""
    # Under the lock first: a request that arrives while an apply is still testing its
    # config joins this reload, which then reads that change too.
    with config_lock():
        cost = reload_cost()
        previous_end = cache.get(RELOAD_BUSY_UNTIL)
        grown = max(cost, min(cache.get(RELOAD_WINDOW, cost) * WINDOW_GROWTH, _longest_window()))
        keeps_coming = previous_end is not None and time.time() - previous_end < WINDOW_GROWTH * cost
        window = grown if keeps_coming else cost
        cache.set(RELOAD_WINDOW, window, timeout=3600)
        # In flight from here on, before the pending flag is cleared: a request from now on
        # queues one follow-up for when this reload ends, not a second reload beside it. The
        # system nginx parses the whole configuration before it signals (`nginx -s reload`).
        sending = 0.0 if settings.NGINX_PRIVATE else cost
        cache.set(RELOAD_BUSY_UNTIL, time.time() + sending + window, timeout=3600)
        # Cleared before the reload: a config applied while nginx reloads asks for (and gets) another.
        cache.delete(RELOAD_PENDING)
        _send_reload()
        # The private nginx's master was only signalled: it parses the configuration from now on.
        cache.set(RELOAD_BUSY_UNTIL, time.time() + window, timeout=3600)


def start_or_reload_system_nginx() -> bool:
    """The system nginx (NGINX_CONF) reloads its configuration, or starts if it was not running
    (a container without systemd: the panel's launcher is its supervisor). True if started."""
    ok, _ = _run("-s", "reload")
    if ok:
        return False
    ok, output = _run()
    if not ok:
        raise NginxError(f"nginx did not start: {output}")
    return True


def _send_reload():
    if not settings.NGINX_PRIVATE:
        started = time.monotonic()
        ok, output = _run("-s", "reload")
        _record_cost(time.monotonic() - started)  # it parsed the whole configuration first
        if not ok:
            raise NginxError(f"nginx did not reload: {output}")
        return
    # Our own nginx: signal its master directly. `nginx -s reload` would first parse the
    # whole configuration again (every certificate included) just to find this pid.
    pid_file = private_pid_file()
    try:
        pid = int(pid_file.read_text().strip())
        # A stale pid file could name some other process by now.
        if b"nginx" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            raise ValueError(f"process {pid} is not nginx")
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise NginxError(f"the private nginx is not running ({pid_file}: {exc})") from None
