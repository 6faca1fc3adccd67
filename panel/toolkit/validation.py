"""Validation of values that end up in nginx config or ACME orders.

One function per kind of value. Each returns the normalised value or raises
django.core.exceptions.ValidationError with a message that says what to fix.
Everything the nginx renderer emits has been through here first.
"""

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import idna
import tldextract
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from panel.toolkit import outbound

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_DOMAINS = 100  # Let's Encrypt's limit of names per certificate


def normalize_domain(value, allow_wildcard=True):
    """A DNS name as stored: lower case, punycode for IDN, optional leading '*.'."""
    if not isinstance(value, str):
        raise ValidationError(_("A domain name must be text."))
    name = value.strip().rstrip(".").lower()
    if not name:
        raise ValidationError(_("A domain name cannot be empty."))
    if any(c.isspace() for c in value.strip()) or any(c in name for c in ';{}"\'\\$/'):
        raise ValidationError(_("“%(name)s” contains characters not allowed in a domain name.") % {"name": value})
    wildcard = name.startswith("*.")
    if "*" in (name[2:] if wildcard else name):
        raise ValidationError(
            _("“%(name)s”: a wildcard is only allowed as the whole first label, as in *.example.com.") % {"name": value}
        )
    if wildcard and not allow_wildcard:
        raise ValidationError(_("“%(name)s”: wildcards are not allowed here.") % {"name": value})
    base = name[2:] if wildcard else name
    try:
        ipaddress.ip_address(base.strip("[]"))
        raise ValidationError(_("“%(name)s” is an IP address, not a domain name.") % {"name": value})
    except ValueError:
        pass
    if ".." in base or base.startswith("."):
        raise ValidationError(_("“%(name)s” has an empty label (two dots in a row).") % {"name": value})
    try:
        ascii_name = idna.encode(base, uts46=True).decode("ascii") if not base.isascii() else base
    except idna.IDNAError:
        raise ValidationError(_("“%(name)s” is not a valid internationalised domain name.") % {"name": value})
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValidationError(_("“%(name)s” needs at least two labels, as in example.com.") % {"name": value})
    for label in labels:
        if len(label) > 63:
            raise ValidationError(
                _("“%(name)s”: the label “%(label)s” is longer than 63 characters.") % {"name": value, "label": label[:20] + "…"}
            )
        if not _LABEL.match(label):
            raise ValidationError(
                _("“%(name)s”: the label “%(label)s” may only hold letters, digits and inner hyphens.")
                % {"name": value, "label": label}
            )
    if labels[-1].isdigit():
        raise ValidationError(_("“%(name)s” looks like an IP address, not a domain name.") % {"name": value})
    full = ("*." if wildcard else "") + ascii_name
    if len(full) > 253:
        raise ValidationError(_("“%(name)s…” is longer than 253 characters.") % {"name": value[:30]})
    return full


def search_term(query):
    """What to look for in stored names, which are punycode: a whole IDN is converted, and so
    is each Unicode label of a partial one (“中文” finds xn--fiq228c.example.test)."""
    try:
        return normalize_domain(query)
    except ValidationError:
        return ".".join(_ascii_label(label) for label in query.lower().split("."))


def _ascii_label(label):
    try:
        return label if label.isascii() else idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError:
        return label  # searched as typed: it finds nothing, as it should


def unicode_domain(name):
    """A stored name as people read it: xn--fiq228c.example.test is 中文.example.test. A label
    that does not decode stays as stored."""
    if "xn--" not in name:
        return name
    return ".".join(_unicode_label(label) for label in name.split("."))


def _unicode_label(label):
    try:
        return idna.decode(label) if label.startswith("xn--") else label
    except idna.IDNAError:
        return label


def normalize_domain_list(values, allow_wildcard=True):
    if not isinstance(values, (list, tuple)) or not values:
        raise ValidationError(_("Give at least one domain name."))
    if len(values) > MAX_DOMAINS:
        raise ValidationError(_("At most %(n)d domain names are allowed.") % {"n": MAX_DOMAINS})
    names = []
    for value in values:
        name = normalize_domain(value, allow_wildcard=allow_wildcard)
        if name not in names:
            names.append(name)
    return names


@lru_cache(maxsize=1)
def _public_suffixes():
    # tldextract's bundled snapshot of the public suffix list: never downloaded, no cache
    # written. Private suffixes count, so alice.github.io and bob.github.io are apart.
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True,
                                 include_psl_private_domains=True)


def registrable_domain(name):
    """The registrable domain a stored name is under: example.co.uk for *.shop.example.co.uk.
    For a suffix the list does not know (.test, .internal), the last two labels."""
    base = name[2:] if name.startswith("*.") else name
    parts = _public_suffixes()(base)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    return ".".join(base.split(".")[-2:])


def above_registrable_domains(name):
    """Is `name`, or what its wildcard covers, above every registrable domain: a public suffix
    (co.uk, github.io) or a single label (test)? Such a name reaches every owner's names."""
    base = name[2:] if name.startswith("*.") else name
    parts = _public_suffixes()(base)
    return "." not in base or (bool(parts.suffix) and not parts.domain)


def name_covers(certificate_name, name):
    """Does a certificate for `certificate_name` (maybe a wildcard) cover `name`?"""
    if certificate_name == name:
        return True
    return certificate_name.startswith("*.") and "." in name and name.split(".", 1)[1] == certificate_name[2:]


def validate_path_under(value, roots, what):
    """An absolute path at or below one of `roots`, as a Path; `what` names the value in
    messages ("document root"). No "..", and no character that a config file or a shell
    would read as syntax. Symbolic links are not resolved: the path may not exist yet."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_("Give the %(what)s as an absolute path.") % {"what": what})
    if any(c.isspace() or c in ';{}"\'\\$#' for c in value) or "\x00" in value:
        raise ValidationError(_("The %(what)s contains characters not allowed in a path here.") % {"what": what})
    path = Path(value)
    if not path.is_absolute():
        raise ValidationError(_("The %(what)s must be an absolute path.") % {"what": what})
    if ".." in path.parts:
        raise ValidationError(_("The %(what)s cannot contain “..”.") % {"what": what})
    resolved = Path(*path.parts)  # normalised: no "//", no "/./"
    if is_under(resolved, roots):
        return resolved
    raise ValidationError(
        _("The %(what)s must be inside one of the allowed directories: %(roots)s.")
        % {"what": what, "roots": ", ".join(str(r) for r in roots)}
    )


def is_under(path, roots):
    """Is `path` one of `roots` or below one of them (compared as written)?"""
    return any(path == root or root in path.parents for root in roots)


ANYWHERE = (Path("/"),)  # the roots of an administrator's document roots


def validate_path_within(value, roots, what, name_may_be_link=False):
    """The one check of a path a user names (document roots, install paths, webroots, server
    configs): validate_path_under, and then the same once symbolic links are followed as far
    as the path exists, so a link inside an allowed directory cannot lead out of it. A root
    that is itself a link (/var/www -> /data/www) counts as where it leads too.
    `name_may_be_link`: only the directory is followed; the last name is a file that is
    replaced, not written through (certbot's live/ files are links into archive/)."""
    path = validate_path_under(value, roots, what)
    try:
        real_roots = [*roots, *(Path(root).resolve() for root in roots)]
        real_path = path.parent.resolve() / path.name if name_may_be_link else path.resolve()
    except (OSError, RuntimeError):  # a loop of links
        real_path = None
    if real_path is None or not is_under(real_path, real_roots):
        raise ValidationError(_("The %(what)s leads outside the allowed directories through a symbolic link.")
                              % {"what": what})
    return path


def validate_document_root(value, roots):
    """A site's document root inside one of `roots` (ANYWHERE for administrators; a user's home
    and granted directories, panel.security.homes), still without “..” or config syntax."""
    return str(validate_path_within(value, roots, _("document root")))


# Never a document root, for anyone: nginx would serve the system's files (/etc/passwd, /proc).
SYSTEM_DIRECTORIES = tuple(Path(p) for p in
                           ("/etc", "/proc", "/sys", "/root", "/boot", "/dev", "/run"))


def check_root_serves_no_secrets(root):
    """Refuse a document root that is, holds or lies inside a system directory or the panel's
    data (its keys, its database, the certificates it installs), as written and once symbolic
    links are followed: for every owner, when saved and again at each nginx apply. The homes
    and web roots the panel's data directory may hold are not "inside" it for this."""
    _check_not_around(root, [*SYSTEM_DIRECTORIES, settings.CERT_DEPLOY_DIR, settings.NGINX_PREFIX,
                             *settings.INSTALL_ROOTS])
    _check_not_around(root, [settings.DATA_DIR],
                      exempt=[settings.HOME_ROOT, *settings.ALLOWED_ROOTS])


def _check_not_around(root, forbidden, exempt=()):
    written = Path(root)
    try:
        real = written.resolve()
    except (OSError, RuntimeError):  # a loop of links: validate_path_within refuses it
        real = written
    exempt = [*map(Path, exempt), *(Path(p).resolve() for p in exempt)]
    for path in dict.fromkeys((written, real)):
        for directory in dict.fromkeys(d for p in forbidden for d in (Path(p), Path(p).resolve())):
            holds = path == directory or path in directory.parents
            if holds or (directory in path.parents and not is_under(path, exempt)):
                if path == written:
                    message = _("%(root)s is, holds or lies inside %(dir)s: nginx would serve "
                                "the system's or the panel's own files (passwords, keys) to "
                                "anyone. Choose a directory of the site's own.")
                else:
                    message = _("%(root)s leads to %(real)s through a symbolic link, and that "
                                "is, holds or lies inside %(dir)s: nginx would serve the system's "
                                "or the panel's own files (passwords, keys) to anyone. Choose a "
                                "directory of the site's own.")
                raise ValidationError(message % {"root": root, "real": real, "dir": directory})


def check_root_not_shared(root, taken_roots):
    """A user's document root may not be, contain or lie inside another owner's site root:
    nginx would serve that customer's files under this user's names. `taken_roots`: the
    roots of other owners' sites."""
    path = Path(root)
    for taken in map(Path, taken_roots):
        if path == taken or taken in path.parents or path in taken.parents:
            raise ValidationError(_("This directory is, contains or lies inside another account's document root; "
                                    "choose a directory of your own."))


def validate_upstream(value):
    """A reverse-proxy target: http(s)://host[:port][/path], nothing nginx would parse as syntax."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_("Give the upstream as a URL, for example http://127.0.0.1:3000."))
    value = value.strip()
    if any(c.isspace() or c in ';{}"\'\\$#' for c in value):
        raise ValidationError(_("The upstream URL contains characters not allowed here."))
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("The upstream must be an http:// or https:// URL with a host."))
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(_("The upstream URL cannot carry a query, a fragment or credentials."))
    try:
        parts.port
    except ValueError:
        raise ValidationError(_("The upstream URL has an invalid port."))
    host = parts.hostname
    if host == "unix":  # nginx reads http://unix:/path as a local socket
        raise ValidationError(_("The upstream cannot be a UNIX socket."))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if "." not in host:
            _check_single_label(host)
        elif not host.isascii():  # an IDN host: nginx resolves the punycode form
            port = f":{parts.port}" if parts.port else ""
            return parts._replace(netloc=normalize_domain(host, allow_wildcard=False) + port).geturl()
        else:
            normalize_domain(host, allow_wildcard=False)
    return value


def validate_outbound_url(value, allow_internal):
    """A URL the panel itself connects to for a user (notification channels: apprise URLs such as
    json://host/path). Unless `allow_internal` (admins), its host may not be an internal address
    in any form the C library reads (127.1, 2130706433, 0x7f000001, 0), nor a localhost name,
    unless the outbound allow-list has it: that would let a customer make the panel probe the
    server's own network.

    This is early feedback only. What counts is panel.toolkit.outbound's check of the address
    actually connected to, when the message is sent: a name can resolve to an internal address,
    and some apprise URLs name their real host in a query parameter (mailto://...?smtp=host)."""
    try:
        host = urlsplit(value).hostname or ""
    except ValueError:
        raise ValidationError(_("This URL cannot be read: check its host and port."))
    if allow_internal or not host:
        return value
    host = host.strip("[]").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        raise ValidationError(_("This URL points at the panel's own server; only an administrator may use it."))
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # 127.1 and 0x7f000001 here; a bare number may be a token (tgram://123456:ABC/...), and
        # 2130706433 is caught where it counts, at connect time.
        ip = outbound.numeric_ipv4(host) if "." in host or host.lower().startswith("0x") else None
    if ip is None:
        return value  # a name, or a service token in the host position (slack://T000/...)
    if outbound.forbidden_reason(ip) and not outbound.listed(ip):
        raise ValidationError(_("This URL points at a private, loopback or link-local address; only an "
                                "administrator may use it."))
    return value


def _check_single_label(host):
    if not _LABEL.match(host):
        raise ValidationError(_("The upstream host “%(host)s” is not a valid host name.") % {"host": host})


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def validate_eab_hmac_key(value):
    """An External Account Binding HMAC key, as CAs show it: base64url text."""
    value = (value or "").strip()
    if not _BASE64URL.match(value) or len(value.rstrip("=")) < 16:
        # Never quote the value: it is a secret.
        raise ValidationError(_("The EAB HMAC key must be the base64url text your CA shows (letters, digits, "
                                "“-” and “_”, at least 16 characters)."))
    return value
