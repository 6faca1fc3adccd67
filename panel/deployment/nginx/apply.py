"""This server's nginx, a deploy destination: apply a site's config safely: stage -> keep the
old file -> swap -> nginx -t of this site -> reload.

A site's certificate is not in its vhost: nginx reads it at each handshake from one file per
site (key and full chain), found by name in a map (render.render_names). So a renewal writes
that file in one rename and is served at the next handshake, with no test and no reload; only
a change of the set of sites or of their options reloads nginx.

`nginx -t` tests the changed site in a minimal configuration (test_site), so its cost does not
grow with the number of sites. If it fails, the previous files come back, the site records
nginx's error, and every other site keeps serving. A reload nginx refuses anyway (what only the
whole configuration shows) takes the site at fault down, so the others go on reloading
(reload_now). The outcome is returned; the caller (panel.deployment.dispatch) records it on the
certificate and tells the owner. Applies are serialised with a file lock on the vhost directory;
reloads are requested, not run: at once when nginx is not reloading, else one follow-up shared
by every deploy until the running reload ends (request_reload).
"""

import datetime
import grp
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_noop

from panel.deployment.nginx import upstream_names
from panel.deployment.nginx.render import (CertificateFiles, Layout, UnsafeValue, check_site_values,
                                           render_minimal_system_main, render_names, render_private_main,
                                           render_site, render_snippets, shared_includes)
from panel.models import Site
from panel.toolkit import access, outbound, pem, validation
from panel.toolkit.files import discard_leftovers, file_lock, put_in_place, stage, write_atomic
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
CERTIFICATE_UNUSABLE = gettext_noop("The certificate cannot be served: nginx would fail every "
                                    "handshake with it. nginx keeps serving the site's previous "
                                    "certificate; issue the certificate again.")
TAKEN_DOWN = gettext_noop("nginx refused to reload with this site's configuration, so nginx no "
                          "longer serves the site; every other site goes on. Correct the site and "
                          "save it again.")
SERVED_FILE_BROKEN = gettext_noop("The certificate file nginx reads for this site at each handshake is "
                                  "missing or unreadable, so HTTPS fails for the site. Apply the site "
                                  "again to write it back.")
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
        certificate_dir=Path(settings.CERT_DEPLOY_DIR) / "served",
        shared_tls=settings.NGINX_SHARED_TLS,
    )


def site_layout() -> Layout:
    """layout(), with how nginx resolves upstream names now (resolv.conf, the hosts file, an IPv6
    route): what rendering a site's vhost needs, and no other caller of layout() (the health
    check among them) should pay for."""
    return replace(layout(), upstream_names=upstream_names.current_resolution())


def nginx_command(*args, config=None):
    command = [settings.NGINX_BIN]
    if settings.NGINX_PRIVATE:
        command += ["-p", f"{settings.NGINX_PREFIX}/", "-e", str(error_log())]
    return command + ["-c", str(config or settings.NGINX_CONF), *args]


def _run(*args, config=None):
    result = subprocess.run(nginx_command(*args, config=config), capture_output=True, text=True, timeout=60)
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
    current.names_dir.mkdir(parents=True, exist_ok=True)
    # HTTP-01 tokens must be readable by nginx's workers.
    Path(settings.ACME_CHALLENGE_DIR).mkdir(parents=True, exist_ok=True)
    os.chmod(settings.ACME_CHALLENGE_DIR, 0o755)
    _ensure_certificate_dir(current)


def _served_file_access() -> tuple[tuple[int, int] | None, int, int]:
    """(owner, file mode, directory mode) of what nginx's workers read at each handshake: theirs
    to read through NGINX_WORKER_GROUP, nobody else's; without a group, the writer's alone (the
    private nginx's workers run as the panel's user)."""
    group = settings.NGINX_WORKER_GROUP
    if not group:
        return None, 0o600, 0o700
    try:
        return (os.getuid(), grp.getgrnam(group).gr_gid), 0o640, 0o750
    except KeyError:
        raise NginxError(f"NGINX_WORKER_GROUP={group}: no such group (the group nginx's workers run as)") from None


def _ensure_certificate_dir(current: Layout):
    """The served certificates' directory, and in it the certificate served for a name no site
    claims (self-signed, made once)."""
    owner, file_mode, dir_mode = _served_file_access()
    directory = current.certificate_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        status = directory.stat()
        if owner and (status.st_uid, status.st_gid) != owner:
            os.chown(directory, *owner)
        if status.st_mode & 0o7777 != dir_mode:
            os.chmod(directory, dir_mode)
        if not current.fallback_certificate.exists():
            key_pem, cert_pem = pem.self_signed("CertPanel: no site has this name")
            write_atomic(current.fallback_certificate, pem.bundle(key_pem, cert_pem), mode=file_mode, owner=owner)
    except OSError as exc:
        raise CertificateFilesNotWritten(f"cannot prepare {directory}: {exc}") from exc


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


def error_log() -> Path:
    """Where nginx's master logs (nginx_command gives the private one its own)."""
    if settings.NGINX_PRIVATE:
        return Path(settings.NGINX_PREFIX) / "logs" / "error.log"
    return Path(settings.NGINX_ERROR_LOG)


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


def stage_served_certificate(current: Layout, site, version) -> Path | None:
    """The file nginx will read `site`'s certificate from (its key, then the full chain; without a
    `version`, the fallback certificate), staged beside it; None if the file holds it already.
    Raises pem.CertificateUnusable (a key and chain that do not belong together: nginx would fail
    every handshake) and CertificateFilesNotWritten. Called under config_lock."""
    target = current.served_certificate(site)
    if version is None:
        text = current.fallback_certificate.read_text()
    else:
        pem.check_pair(version.chain_pem, version.private_key)
        text = pem.bundle(version.private_key, version.chain_pem)
    try:
        if target.read_text() == text:
            return None
    except OSError:
        pass  # none yet
    owner, mode, _ = _served_file_access()
    try:
        discard_leftovers(target)  # a copy of the key, had a worker died while writing it
        return stage(target, text, mode=mode, owner=owner)
    except OSError as exc:
        raise CertificateFilesNotWritten(f"cannot write the certificate file: {exc}") from exc


def check_served_certificates() -> list[int]:
    """The HTTPS sites whose served certificate file is missing or unusable (nginx fails their
    handshakes and logs why): each is marked failed with what to do, and its id returned. A
    file is only read here, never written: a certificate file removed by hand, or a disk error,
    is the administrator's to notice, not for the panel to hide by writing it back."""
    current = layout()
    broken = {}
    for names in current.names_dir.glob("site-*.map"):
        try:
            site_id = int(names.stem.removeprefix("site-"))
        except ValueError:
            continue
        path = current.served_certificate(Site(pk=site_id))
        try:
            key_pem, chain_pem = pem.unbundle(path.read_text())
            pem.check_pair(chain_pem, key_pem)
        except (OSError, ValueError) as exc:  # CertificateUnusable is a ValueError; so is no certificate
            broken[site_id] = f"{path}: {exc}"
    for site in Site.objects.filter(pk__in=broken).exclude(config_failure__message=SERVED_FILE_BROKEN):
        log.warning("site %s: nginx cannot read its certificate: %s", site.pk, broken[site.pk])
        Site.objects.filter(pk=site.pk).update(config_status="failed", config_error=broken[site.pk],
                                               config_failure=_failure(SERVED_FILE_BROKEN, broken[site.pk]))
    return sorted(broken)


def preview_site_config(site) -> str:
    """The vhost apply_site_config would install for `site` now. Writes nothing: the site
    page shows it read-only. The certificate appears by path, never by content."""
    current = site_layout()
    try:
        return (render_site(site, current) + f"\n# The names map ({current.names_file(site)}):\n"
                + render_names(site, current))
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
    current = site_layout()
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
            # Before anything is written (the upstream pinned, the certificate's path checked too).
            text, names = render_site(site, current, upstream), render_names(site, current)
        except UnsafeValue as exc:
            return _unsafe(site, version, exc)
        try:
            ensure_shared_files(current)
            certificate = stage_served_certificate(current, site, version)
        except pem.CertificateUnusable as exc:
            log.warning("site %s: version %s cannot be served: %s", site.pk, version.pk, exc)
            Site.objects.filter(pk=site.pk).update(config_status="failed", config_error=str(exc),
                                                   config_failure=_failure(CERTIFICATE_UNUSABLE, str(exc)))
            return SiteApplied(ok=False, error=str(exc), version=version, site=site)
        except CertificateFilesNotWritten as exc:
            log.warning("site %s: %s; the previous config stays", site.pk, exc)
            Site.objects.filter(pk=site.pk).update(
                config_status="failed", config_error=str(exc),
                config_failure=_failure(FILES_NOT_WRITTEN, str(exc)))
            raise CertificateFilesNotWritten(str(exc), site=site, version=version) from exc
        path, names_path = current.vhost_dir / site.config_name, current.names_file(site)
        custom, applied_custom = current.custom_dir(site), current.applied_custom_dir(site)
        if _holds(path, text) and _holds(names_path, names) and not _custom_additions_changed(custom, applied_custom):
            # Nothing nginx parses changed (a first certificate, a renewal): the new file is read
            # at the next handshake, with no test and no reload.
            _serve(current, site, certificate, version is not None)
            ok, reload = True, False
        else:
            staged = [_stage_beside(path, text), _stage_beside(names_path, names),
                      _stage_custom_additions(custom, applied_custom)]
            lives = (path, names_path, applied_custom)
            backups = [_swap_in(live, new) for live, new in zip(lives, staged)]
            ok, output = test_site(current, site)
            for live, backup in zip(lives, backups):
                if ok:
                    _remove(backup)
                else:
                    _roll_back(live, backup)
            if ok:
                _serve(current, site, certificate, version is not None)
            elif certificate:
                certificate.unlink()
            if not ok:
                log.warning("nginx rejected the config of site %s; previous config restored:\n%s", site.pk, output)
                # Point the owner at the file they edit, not at the panel's copy of it.
                output = output.replace(f"{applied_custom}/", f"{custom}/")
            reload = ok
    error, failure = ("", None) if ok else _error_for_site(output, site)
    Site.objects.filter(pk=site.pk).update(
        config_status="applied" if ok else "failed",
        config_error=error, config_failure=failure,
        config_applied_at=timezone.now() if ok else site.config_applied_at,
    )
    if reload:
        request_reload()
    return SiteApplied(ok=ok, error=error, version=version, site=site)


def _serve(current: Layout, site, certificate: Path | None, own: bool):
    """Put the staged `certificate` file in place (None: the file holds it already); `own`: the
    site's own certificate, not the fallback, so its HTTP server may send visitors to HTTPS
    (https_ready): only once the file holds it, and no longer from before it stops to."""
    ready = current.https_ready(site)
    if not own:
        ready.unlink(missing_ok=True)
    if certificate:
        put_in_place([(certificate, current.served_certificate(site))])
    if own and not ready.exists():
        owner, mode, _ = _served_file_access()
        write_atomic(ready, "", mode=mode, owner=owner)


def _holds(path: Path, text: str | None) -> bool:
    """Whether `path` holds `text` (None: whether it is absent)."""
    if text is None:
        return not path.exists()
    try:
        return path.read_text() == text
    except OSError:
        return False


def _stage_beside(path: Path, text: str | None) -> Path | None:
    """`text` in `path`.new, to swap in; None (nothing to stage: the live file goes) for None."""
    if text is None:
        return None
    staged = path.with_name(path.name + ".new")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(staged, text)
    return staged


def _custom_additions_changed(custom_dir: Path, applied_dir: Path) -> bool:
    """Whether the site's hand-written *.conf files differ from the copy nginx was given."""
    def contents(directory):
        return {f.name: f.read_bytes() for f in sorted(directory.glob("*.conf"))} if directory.is_dir() else {}
    return not applied_dir.is_dir() or contents(custom_dir) != contents(applied_dir)


MINIMAL_TEST_CONFIG = "minimal-test.conf"


def test_site(current: Layout, site) -> tuple[bool, str]:
    """(ok, output) of `nginx -t` of `site` in a minimal configuration: the http-level settings the
    panel knows, the shared maps (every site's names among them: a name two sites claim fails
    here), the default servers and this site's vhost. Its cost does not grow with the number
    of sites.

    What the minimal configuration cannot prove, the whole one decides. When the minimal one is
    rejected, the whole one is tested before the site is refused: the site's hand-written
    additions may use what nginx.conf defines (a limit_req zone, a log format) that the minimal
    configuration lacks. And what only the whole configuration shows (contradicting listen
    options of two sites' additions, hash sizes) is caught at the reload, which takes the site
    at fault down (reload_now)."""
    includes = [*shared_includes(current), current.vhost_dir / site.config_name]
    config = current.snippets_dir / MINIMAL_TEST_CONFIG
    if settings.NGINX_PRIVATE:
        prefix = Path(settings.NGINX_PREFIX)
        text = render_private_main(current, prefix, prefix / "minimal-test.pid", includes)
    else:
        text = render_minimal_system_main(current, includes)
    write_atomic(config, text)
    ok, output = _run("-t", config=config)
    if ok:
        return True, output
    log.info("site %s: the minimal configuration was rejected; testing the whole one:\n%s", site.pk, output)
    return test_config()


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


def _swap_in(live: Path, staged: Path | None) -> Path | None:
    """Put `staged` (a file or a directory; None: nothing) in place of `live`. Returns where the
    previous one was kept, None if there was none."""
    backup = live.with_name(live.name + ".old")
    _remove(backup)
    if live.exists():
        os.replace(live, backup)
    else:
        backup = None
    if staged is not None:
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
    if (f"/{site.config_name}:" in error or f"/custom/site-{site.pk}/" in error
            or f"/{Layout.names_file_name(site)}:" in error):
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
    names = current.names_file(site)
    was_live = vhost.exists()
    for suffix in ("", ".new", ".old"):
        vhost.with_name(vhost.name + suffix).unlink(missing_ok=True)
        names.with_name(names.name + suffix).unlink(missing_ok=True)
        _remove(applied_custom.with_name(applied_custom.name + suffix))
    current.https_ready(site).unlink(missing_ok=True)
    current.served_certificate(site).unlink(missing_ok=True)
    discard_leftovers(current.served_certificate(site))
    return was_live


RELOAD_PENDING = "nginx-reload-pending"
RELOAD_BUSY_UNTIL = "nginx-reload-busy-until"
RELOAD_WINDOW = "nginx-reload-window"
RELOAD_COST = "nginx-reload-cost"
RELOADED_AT = "nginx-reloaded-at"
RELOAD_REQUESTS = "nginx-reload-requests"  # since the last reload started

# While reloads keep coming, each one's window is this many times the last one's (up to
# _longest_window), so a long burst (a bulk issuance) shares a few reloads: log4(burst / cost).
WINDOW_GROWTH = 4


def _record_cost(seconds: float):
    """What nginx's reload took (parsing the whole configuration, until its new workers
    started): how long a reload is in flight. Milliseconds at 10 sites, more at 10,000."""
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
    cache.add(RELOAD_REQUESTS, 0, timeout=3600)
    cache.incr(RELOAD_REQUESTS)
    wait = cache.get(RELOAD_BUSY_UNTIL, 0.0) - time.time()
    wait = min(max(0.0, wait), _longest_window())
    if cache.add(RELOAD_PENDING, 1, timeout=wait + 60):
        RELOAD_NGINX.apply_async(countdown=wait or None)


def reload_now():
    """Reload nginx now (what the reload_nginx task runs), and mark it in flight for its window.

    The window is the cost of a reload (nginx is done when the reload is), unless this reload
    shares several requests and starts less than WINDOW_GROWTH times the cost after the
    previous window ended: then changes come faster than nginx can take them one by one (a
    bulk of new sites), and the window is WINDOW_GROWTH times the previous one, up to
    max(cost, NGINX_RELOAD_COALESCE_MAX_SECONDS); what comes meanwhile waits for its end. A
    change at a time, however close together (a user adding sites one after another), is
    never held back by more than the reload in flight."""
    # Under the lock first: a request that arrives while an apply is still testing its
    # config joins this reload, which then reads that change too.
    with config_lock():
        cost = reload_cost()
        previous_end = cache.get(RELOAD_BUSY_UNTIL)
        shared = cache.get(RELOAD_REQUESTS, 0) > 1
        cache.set(RELOAD_REQUESTS, 0, timeout=3600)
        grown = max(cost, min(cache.get(RELOAD_WINDOW, cost) * WINDOW_GROWTH, _longest_window()))
        keeps_coming = shared and previous_end is not None and time.time() - previous_end < WINDOW_GROWTH * cost
        window = grown if keeps_coming else cost
        cache.set(RELOAD_WINDOW, window, timeout=3600)
        # In flight from here on, before the pending flag is cleared: a request from now on
        # queues one follow-up for when this reload ends, not a second reload beside it.
        started = time.time()
        cache.set(RELOAD_BUSY_UNTIL, started + window, timeout=3600)
        # Cleared before the reload: a config applied while nginx reloads asks for (and gets) another.
        cache.delete(RELOAD_PENDING)
        old_workers = _send_reload()  # returns when nginx's new workers run
        # What is left of the window once nginx is done: nothing after a change at a time.
        took = time.time() - started
        cache.set(RELOAD_BUSY_UNTIL, time.time() + max(0.0, window - took), timeout=3600)
    if old_workers:
        _wait_until_gone(*old_workers)  # without the lock: applies go on meanwhile


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


def _send_reload() -> tuple[int, set] | None:
    """Have nginx reload, and make sure it did: a reload nginx refuses (what only the whole
    configuration shows) takes down the sites at fault, and nginx reloads without them.
    Returns the private nginx's master and its old workers, still leaving."""
    for _attempt in range(5):
        started = time.monotonic()
        ok, output, old_workers = _reload_once()
        if ok:
            _record_cost(time.monotonic() - started)
            cache.set(RELOADED_AT, time.time(), timeout=None)
            return old_workers
        ok, whole = test_config()  # the file and line nginx refused, in full
        if ok:
            raise NginxError(f"nginx did not reload, though its configuration passes nginx -t: {output}")
        if not _take_down_sites_at_fault(whole):
            _not_served_yet(BROKEN_ELSEWHERE)
            raise NginxError(f"nginx did not reload: its configuration is broken outside the panel's sites: {whole}")
    raise NginxError(f"nginx did not reload: {output}")


def _not_served_yet(message):
    """The sites applied since nginx last reloaded wait for a reload nginx refuses: say so on each
    (their files stay: the next reload nginx accepts serves them)."""
    reloaded_at = cache.get(RELOADED_AT)
    if reloaded_at is None:
        return  # not known since when (a cleared cache): no site is blamed
    since = datetime.datetime.fromtimestamp(reloaded_at, tz=datetime.timezone.utc)
    Site.objects.filter(config_status="applied", config_applied_at__gte=since).update(
        config_status="failed", config_error=message, config_failure=_failure(message))


SITE_FILE = re.compile(r"/(?:site-(\d+)\.conf|tls-names/site-(\d+)\.map|custom-applied/site-(\d+)/)")


def _take_down_sites_at_fault(output: str) -> bool:
    """Take down each site whose file nginx's complaint (`output`, of nginx -t) names, and tell
    its owner; whether there was one."""
    error = _short_error(output)
    ids = {int(next(group for group in match.groups() if group)) for match in SITE_FILE.finditer(error)}
    current = layout()
    for site in Site.objects.filter(pk__in=ids):
        log.warning("nginx refused to reload with site %s's config; it is taken down:\n%s", site.pk, error)
        _take_down(current, site)
        Site.objects.filter(pk=site.pk).update(config_status="failed", config_error=error,
                                               config_failure=_failure(TAKEN_DOWN, error))
    return bool(ids)


def _reload_once() -> tuple[bool, str, tuple[int, set] | None]:
    """(whether nginx reloaded, or nginx's words why not, (master, old workers) of the private nginx)."""
    if not settings.NGINX_PRIVATE:
        # `nginx -s reload` parses the whole configuration, and refuses to signal if it is broken.
        return *_run("-s", "reload"), None
    # Our own nginx: signal its master directly. `nginx -s reload` would parse the whole
    # configuration once more just to find this pid.
    pid_file = private_pid_file()
    try:
        pid = int(pid_file.read_text().strip())
        # A stale pid file could name some other process by now.
        if b"nginx" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            raise ValueError(f"process {pid} is not nginx")
        workers, log_size = _children(pid), _size(error_log())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise NginxError(f"the private nginx is not running ({pid_file}: {exc})") from None
    return *_reload_outcome(pid, workers, log_size), (pid, workers)


def _reload_outcome(pid: int, workers: set, log_size: int) -> tuple[bool, str]:
    """Wait for the master `pid` to start new workers (it reloaded) or to log an [emerg] (it
    refused, and kept the old configuration)."""
    limit = max(10.0, 10 * reload_cost())
    deadline = time.monotonic() + limit
    pause = 0.002
    while time.monotonic() < deadline:
        if _children(pid) - workers:
            return True, ""
        refused = _short_error(_read_from(error_log(), log_size))
        if "[emerg]" in refused:
            return False, refused
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return False, f"nginx started no new worker within {limit:.0f} s of the reload signal"


# Idle old workers leave within milliseconds; one still sending a large response is not waited for.
OLD_WORKERS_GRACE = 0.5


def _wait_until_gone(pid: int, workers: set):
    """Until the old `workers` of the master `pid` leave (for a moment at most), they may still
    take a new connection with the old configuration: a reload is over when they are gone."""
    leaving = time.monotonic() + OLD_WORKERS_GRACE
    while _children(pid) & workers and time.monotonic() < leaving:
        time.sleep(0.002)


def _children(pid: int) -> set:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def _size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _read_from(path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(1 << 20).decode(errors="replace")
    except OSError:
        return ""
