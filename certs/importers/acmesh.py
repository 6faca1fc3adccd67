"""Read an acme.sh home (`~/.acme.sh`, or its --config-home) into a `Found`.

No database, no network, no shell: acme.sh's conf files are shell assignments that
acme.sh writes one per line (`KEY='value'`, by _setopt/_save_conf) and reads back by
sourcing them; here they are parsed as text, each key keeping its line, and a line that
is not such an assignment is reported with its path and line instead of being run.

Layout read (acme.sh 2.x and 3.x):
- account.conf: ACCOUNT_EMAIL, DEFAULT_ACME_SERVER and DNS API credentials, saved as
  `SAVED_<VAR>` (3.x) or plain `<VAR>` (older scripts).
- ca/<host>/<path>/{account.key, account.json, ca.conf}: one ACME account per CA. acme.sh
  names the folder after the directory URL without scheme and port (see `ca_folder`);
  older versions used ca/<host>/.
- <domain>/ or <domain>_ecc/ with <domain>.conf (Le_* settings and, in 3.x, the DNS
  credentials), <domain>.key, <domain>.cer, ca.cer, fullchain.cer.

Where acme.sh looks in several places for one value, the same order is kept: the domain
conf (sourced last by acme.sh) over account.conf's plain variables (sourced at start-up)
over its `SAVED_` ones (read by the dnsapi scripts only when the variable is unset).

Every file is read inside the home, except dns_nsupdate's key file (NSUPDATE_KEY), read where
the conf says. With `confined` (an uploaded archive, whose absolute paths are another machine's)
that file too is read only inside the home: one named elsewhere is a Problem saying where to put
it, so the server's own file of that name is never pulled in.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from certs.importers import acmesh_dns, inside
from certs.importers.found import Found, FoundAccount, FoundCertificate, FoundInstall, Problem
from certs.models import ChallengeType, KeyType
from panel.toolkit.pem import same_public_key

B64_START = "__ACME_BASE64__START_"
B64_END = "__ACME_BASE64__END_"
ECC_SUFFIX = "_ecc"
# acme.sh's own folders in its home; any other folder without a <name>.conf is not a certificate either.
NOT_CERTIFICATES = {"backup", "ca", "deploy", "dnsapi", "notify"}

KEY_LENGTHS = {
    "ec-256": KeyType.EC256, "ec-384": KeyType.EC384,
    "2048": KeyType.RSA2048, "3072": KeyType.RSA3072, "4096": KeyType.RSA4096,
}

# Settings that do not carry over, with the note shown when one is set (translated then).
IGNORED_SETTINGS = {
    "Le_DNSSleep": gettext_noop("%(setting)s is not carried over: the panel checks DNS propagation itself "
                                "instead of sleeping"),
    "Le_Preferred_Chain": gettext_noop("%(setting)s is not carried over: the panel takes the CA's default chain"),
    "Le_TLSPort": gettext_noop("%(setting)s is not carried over: the panel does not answer tls-alpn-01"),
    "Le_LocalAddress": gettext_noop("%(setting)s is not carried over: the panel's standalone mode listens on its "
                                    "own address"),
    "Le_OCSP_Staple": gettext_noop("%(setting)s is not carried over: OCSP must-staple is not requested by the "
                                   "panel"),
}

_ASSIGNMENT = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")
_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=~-]*")
_DOUBLE_ESCAPE = re.compile(r"\\([\\\"$`])")


# -- conf files ---------------------------------------------------------------------------------------------


@dataclass
class Conf:
    """The assignments of one conf file: key -> (value, line). Bad lines are in `problems`."""

    path: Path
    values: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    def get(self, key, default=""):
        return self.values[key][0] if key in self.values else default

    def line(self, key):
        return self.values[key][1] if key in self.values else None

    def problem(self, key, message):
        return Problem(str(self.path), message, self.line(key))


def _unquote(text):
    """The value of the right-hand side of an assignment as sh would read it, or None
    when it needs more than quote removal (an unbalanced quote, an expansion, a space)."""
    if len(text) >= 2 and text[0] == text[-1] == "'":
        inner = text[1:-1]
        return None if "'" in inner else inner
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = _DOUBLE_ESCAPE.sub("", text[1:-1])
        if any(c in inner for c in '"$`'):
            return None
        return _DOUBLE_ESCAPE.sub(r"\1", text[1:-1])
    return text if _BARE.fullmatch(text) else None


def _decode(value):
    """acme.sh's __ACME_BASE64__START_…__ACME_BASE64__END_ wrapping undone; ValueError if bad."""
    if not (value.startswith(B64_START) and value.endswith(B64_END)):
        return value
    encoded = value[len(B64_START):len(value) - len(B64_END)]
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError from None


def read_conf(path: Path) -> Conf:
    """Parse an acme.sh conf without a shell. A missing file reads as empty."""
    conf = Conf(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return conf
    except (OSError, UnicodeDecodeError) as exc:
        # Translators: follows the file's path and a colon: the file is the subject.
        conf.problems.append(Problem(str(path), _("cannot be read (%(error)s)") % {"error": type(exc).__name__}))
        return conf
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        value = _unquote(match["value"]) if match else None
        if value is None:
            # The value is not quoted: it may be a secret, so only the key is named.
            if match:
                # Translators: KEY='value' is shell syntax: keep it as is.
                message = _("%(key)s= is not a KEY='value' assignment as acme.sh writes them (unbalanced quote "
                            "or shell syntax)") % {"key": match["key"]}
            else:
                # Translators: follows the file's path and line number. KEY='value' is shell syntax: keep it as is.
                message = _("this line is not a KEY='value' assignment as acme.sh writes them (unbalanced quote "
                            "or shell syntax)")
            conf.problems.append(Problem(str(path), message, number))
            continue
        try:
            conf.values[match["key"]] = (_decode(value), number)
        except ValueError:
            message = _("%(key)s has an %(start)s…%(end)s value that is not valid base64 text")
            conf.problems.append(Problem(str(path), message % {"key": match["key"], "start": B64_START,
                                                               "end": B64_END}, number))
    return conf


# -- accounts -----------------------------------------------------------------------------------------------


def ca_folder(directory_url: str) -> str:
    """The folder under ca/ acme.sh keeps a CA's account in (`_initpath`: CA_DIR): the
    directory URL's host without the port, then its path, e.g. https://127.0.0.1:14000/dir
    -> 127.0.0.1/dir."""
    parts = urlsplit(directory_url)
    return "/".join(p for p in [parts.hostname or "", *parts.path.split("/")] if p)


def _read_key(path: Path):
    """(the private key object, its PEM text) or raises ValueError/OSError."""
    text = path.read_text(encoding="ascii")
    return serialization.load_pem_private_key(text.encode(), password=None), text.strip() + "\n"


def _read_accounts(root: Path, urls: dict, account_conf: Conf, found: Found) -> dict:
    """{ca folder: FoundAccount} for every ca/**/account.key; `urls` maps ca folders to
    the directory URLs the domain confs name."""
    accounts = {}
    ca_root = root / "ca"
    for key_path in sorted(ca_root.rglob("account.key")) if ca_root.is_dir() else []:
        folder = key_path.parent
        rel = folder.relative_to(ca_root).as_posix()
        try:
            key, pem = _read_key(key_path)
        except (OSError, ValueError, TypeError, UnicodeDecodeError):
            # Translators: follows the file's path and a colon: the file is the subject.
            found.problems.append(Problem(str(key_path), _("is not a readable PEM private key; this CA's account "
                                                           "and its certificates are not imported")))
            continue
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            # Translators: follows the file's path and a colon: the file is the subject.
            found.problems.append(Problem(str(key_path), _("is neither an EC nor an RSA key")))
            continue
        ca_conf = read_conf(folder / "ca.conf")
        found.problems.extend(ca_conf.problems)
        email = ca_conf.get("CA_EMAIL") or _contact_email(folder / "account.json", found)
        accounts[rel] = FoundAccount(
            directory_url=urls.get(rel) or f"https://{rel}", key_pem=pem, account_url=ca_conf.get("ACCOUNT_URL"),
            email=email or account_conf.get("ACCOUNT_EMAIL"), source=str(key_path))
    found.accounts.extend(accounts.values())
    return accounts


def _contact_email(path: Path, found: Found) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        # Translators: follows the file's path and a colon: the file is the subject.
        message = _("is not readable JSON (%(error)s); e-mail not taken") % {"error": type(exc).__name__}
        found.problems.append(Problem(str(path), message))
        return ""
    contacts = data.get("contact") if isinstance(data, dict) else None
    for contact in contacts if isinstance(contacts, list) else []:
        if isinstance(contact, str) and contact.startswith("mailto:"):
            return contact[len("mailto:"):]
    return ""


def _account_for(directory_url, accounts):
    """The account acme.sh would use for this CA: ca/<host>/<path>/, else the old ca/<host>/."""
    return accounts.get(ca_folder(directory_url)) or accounts.get(urlsplit(directory_url).hostname or "")


# -- certificates -------------------------------------------------------------------------------------------


def _domain_folders(root: Path):
    """(folder, conf path) of every certificate folder, sorted by name."""
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in NOT_CERTIFICATES):
        main = folder.name[:-len(ECC_SUFFIX)] if folder.name.endswith(ECC_SUFFIX) else folder.name
        conf = folder / f"{main}.conf"
        if conf.is_file():
            yield folder, main, conf


def _split(value):
    """acme.sh's comma lists (Le_Alt, Le_Webroot, Le_ChallengeAlias), 'no' meaning none."""
    return [item.strip() for item in value.split(",") if item.strip() and item.strip() != "no"]


def _pem_certificates(path: Path):
    return x509.load_pem_x509_certificates(path.read_bytes())


class _Reader:
    """Reads one certificate folder; every finding goes on `cert`."""

    def __init__(self, root, folder, main, conf_path, account_conf, accounts, default_server, confined):
        self.root = root
        self.confined = confined
        self.folder = folder
        self.main = main
        self.conf = read_conf(conf_path)
        self.account_conf = account_conf
        self.accounts = accounts
        self.default_server = default_server
        self.cert = FoundCertificate(name=folder.name, source=str(conf_path))

    def problem(self, key, message):
        self.cert.problems.append(self.conf.problem(key, message))

    def note(self, key, message):
        self.cert.notes.append(self.conf.problem(key, message))

    def read(self) -> FoundCertificate:
        self.cert.problems.extend(self.conf.problems)
        self._domains()
        self._files()
        self._account()
        self._method()
        self._install()
        self._renewal()
        for key, message in IGNORED_SETTINGS.items():
            if self.conf.get(key) not in ("", "no"):
                self.note(key, _(message) % {"setting": key})
        return self.cert

    def _domains(self):
        main = self.conf.get("Le_Domain")
        if not main:
            self.problem("Le_Domain", _("Le_Domain is missing: the certificate's names are unknown"))
            return
        names = [main, *_split(self.conf.get("Le_Alt"))]
        self.cert.domains = list(dict.fromkeys(name.lower() for name in names))

    def _files(self):
        key_path = self.folder / f"{self.main}.key"
        leaf_path = self.folder / f"{self.main}.cer"
        try:
            key, self.cert.key_pem = _read_key(key_path)
        except (OSError, ValueError, TypeError, UnicodeDecodeError) as exc:
            key = None
            if isinstance(exc, FileNotFoundError):
                # Translators: follows the file's path and a colon: the file is the subject.
                message = _("is missing: the certificate's private key is needed")
            else:
                # Translators: follows the file's path and a colon: the file is the subject.
                message = _("is not a readable PEM private key: the certificate's private key is needed")
            self.cert.problems.append(Problem(str(key_path), message))
        try:
            leaf = _pem_certificates(leaf_path)[0]
            self.cert.cert_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
        except (OSError, ValueError, IndexError) as exc:
            leaf = None
            if isinstance(exc, FileNotFoundError):
                # Translators: follows the file's path and a colon: the file is the subject.
                message = _("is missing: the certificate itself is needed")
            else:
                # Translators: follows the file's path and a colon: the file is the subject.
                message = _("holds no readable PEM certificate: the certificate itself is needed")
            self.cert.problems.append(Problem(str(leaf_path), message))
        self._chain(leaf)
        if key is not None:
            self._key_type(key)
            if leaf is not None and not same_public_key(leaf.public_key(), key.public_key()):
                # Translators: follows the key file's path and a colon: the key file is the subject.
                message = _("does not belong to %(certificate)s (the public keys differ)") % {
                    "certificate": leaf_path.name}
                self.cert.problems.append(Problem(str(key_path), message))

    def _chain(self, leaf):
        """ca.cer holds the intermediates; fullchain.cer minus the leaf when ca.cer is gone."""
        for name, skip_leaf in (("ca.cer", False), ("fullchain.cer", True)):
            path = self.folder / name
            if not path.is_file():
                continue
            try:
                chain = _pem_certificates(path)
            except (OSError, ValueError):
                # Translators: follows the file's path and a colon: the file is the subject.
                self.cert.problems.append(Problem(str(path), _("holds no readable PEM certificate")))
                return
            if skip_leaf and leaf is not None:
                chain = [c for c in chain if c != leaf]
            self.cert.chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
            return
        # Translators: follows the path of ca.cer and a colon: ca.cer is the subject.
        message = _("is missing (and so is fullchain.cer): the CA's intermediate certificates are needed")
        self.cert.problems.append(Problem(str(self.folder / "ca.cer"), message))

    def _key_type(self, key):
        actual = KeyType.of_key(key)
        key_path = str(self.folder / f"{self.main}.key")
        if actual is None:
            # Translators: follows the key file's path and a colon: the key file is the subject.
            self.cert.problems.append(Problem(key_path, _("is a key type the panel does not issue "
                                                          "(EC P-256/P-384, RSA 2048/3072/4096)")))
            return
        self.cert.key_type = actual.value
        length = self.conf.get("Le_Keylength")
        if length and KEY_LENGTHS.get(length) != actual:
            self.note("Le_Keylength", _("Le_Keylength is %(length)s but %(key_file)s is %(key_type)s; the panel "
                                        "renews with the key file's type")
                      % {"length": repr(length), "key_file": f"{self.main}.key", "key_type": actual.label})

    def _account(self):
        directory_url = self.conf.get("Le_API") or self.default_server
        if not directory_url:
            self.problem("Le_API", _("Le_API is missing: the CA this certificate was issued by is unknown"))
            return
        self.cert.account = _account_for(directory_url, self.accounts)
        if self.cert.account is None:
            self.problem("Le_API", _("Le_API is %(url)s but there is no account for it under ca/%(folder)s/ "
                                     "(account.key)") % {"url": directory_url, "folder": ca_folder(directory_url)})

    # -- validation method ----------------------------------------------------------------------------------

    def _method(self):
        # One entry per name; here "no" is a method (standalone), not "none".
        methods = list(dict.fromkeys(m.strip() for m in self.conf.get("Le_Webroot").split(",") if m.strip()))
        if not methods:
            self.problem("Le_Webroot", _("Le_Webroot is missing: how acme.sh validated the names is unknown"))
            return
        if len(methods) > 1:
            self.problem("Le_Webroot", _("Le_Webroot names a different method per name (%(methods)s); the panel "
                                         "validates all names of a certificate one way")
                         % {"methods": ", ".join(methods)})
            return
        method = methods[0]
        if method.startswith("/"):
            self.cert.challenge, self.cert.webroot = ChallengeType.HTTP01_WEBROOT.value, method
        elif method == "no":
            self.cert.challenge = ChallengeType.HTTP01_STANDALONE.value
            if self.conf.get("Le_HTTPPort") not in ("", "80"):
                self.note("Le_HTTPPort", _("Le_HTTPPort is %(port)s: the panel's standalone mode listens on "
                                           "CERTPANEL_STANDALONE_PORT instead")
                          % {"port": self.conf.get("Le_HTTPPort")})
        elif method == "nginx" or method.startswith("nginx:"):
            self.cert.challenge = ChallengeType.HTTP01_NGINX.value
            self.cert.server_config = method.partition(":")[2]
            if not self.cert.server_config:
                self.problem("Le_Webroot", _("nginx mode without a config file: acme.sh found the server block "
                                             "itself; give the nginx config file that serves these names"))
        elif method == "apache":
            self.cert.challenge = ChallengeType.HTTP01_APACHE.value
            self.problem("Le_Webroot", _("apache mode: acme.sh found the virtual host itself; give the Apache "
                                         "config file that serves these names"))
        elif method == "dns":
            self.cert.challenge = ChallengeType.DNS01_MANUAL.value
        elif method.startswith("dns_"):
            self.cert.challenge = ChallengeType.DNS01.value
            self._dns(method)
        else:
            self.problem("Le_Webroot", _("Le_Webroot %(value)s (acme.sh's %(method)s mode) has no CertPanel method; "
                                         "pick webroot, standalone or DNS") % {"value": repr(method), "method": method})
        self._alias()

    def _lookup(self, variable):
        """(value, conf it came from) the way acme.sh finds a dnsapi variable; ("", None) if unset."""
        for conf, key in ((self.conf, variable), (self.conf, f"SAVED_{variable}"),
                          (self.account_conf, variable), (self.account_conf, f"SAVED_{variable}")):
            if conf.get(key):
                return conf.get(key), conf
        return "", None

    def _set_by(self, variable):
        """(conf, key): the conf (this one or account.conf) and the key that set `variable`."""
        conf = self._lookup(variable)[1]
        return conf, variable if variable in conf.values else f"SAVED_{variable}"

    def _at(self, variable, message):
        """A Problem at the line that set `variable`."""
        conf, key = self._set_by(variable)
        return conf.problem(key, message)

    def _dns(self, api_name):
        api = acmesh_dns.DNS_APIS.get(api_name)
        if api is None:
            self.problem("Le_Webroot", _("%(api)s has no CertPanel DNS provider: upload the certificate instead, or "
                                         "pick another validation method") % {"api": api_name})
            return
        found = {name: self._lookup(name)[0] for name in acmesh_dns.variables(api)}
        chosen = next((alt for alt in api.credentials if all(found[name] for name in alt)), None)
        if chosen is None:
            wanted = ", ".join(api.credentials[0])
            for alt in api.credentials[1:]:
                # Translators: alternative sets of acme.sh variables, e.g. "CF_Token or CF_Key, CF_Email".
                wanted = _("%(these)s or %(those)s") % {"these": wanted, "those": ", ".join(alt)}
            self.problem("Le_Webroot", _("%(api)s credentials are missing: acme.sh would have saved %(variables)s in "
                                         "this file or in account.conf (SAVED_…)")
                         % {"api": api_name, "variables": wanted})
            return
        values = {field_name: found[name] for name, field_name in chosen.items()}
        values.update({field_name: found[name] for name, field_name in api.optional.items() if found[name]})
        values.update(api.fixed)
        for name, message in api.blocking.items():
            if found[name]:
                self.cert.problems.append(self._at(name, _(message) % {"api": api_name, "variable": name}))
        for name, message in api.notes.items():
            if found[name]:
                self.cert.notes.append(self._at(name, _(message) % {"variable": name}))
        if api.key_file:
            tsig = self._tsig_key(api.key_file, found[api.key_file])
            if tsig is None:
                return
            values.update(tsig)
        self.cert.dns_provider, self.cert.dns_credentials = api.provider, values
        self.cert.dns_source = f"acme.sh {api_name}"

    def _tsig_key(self, variable, path_text):
        """The TSIG fields from the BIND key file `variable` names; None (with a Problem) if it cannot."""
        if not path_text:
            self.problem("Le_Webroot", _("%(variable)s is missing: acme.sh's dns_nsupdate needs its key file")
                         % {"variable": variable})
            return None
        path = Path(path_text) if Path(path_text).is_absolute() else self.root / path_text
        if self.confined and not inside(path, self.root):
            conf, key = self._set_by(variable)
            # Translators: keep %(key)s='%(name)s' (a line of an acme.sh conf) and the command as is.
            message = _("%(variable)s names %(path)s, outside the uploaded acme.sh home, so it is not read from this "
                        "server: put the key file into the archive as %(suggested)s and change this line to "
                        "%(key)s='%(name)s', or run “manage.py import_acmesh PATH” on the server, where the file is")
            self.cert.problems.append(conf.problem(key, message % {
                "variable": variable, "path": path_text, "suggested": str(self.root / path.name), "key": key,
                "name": path.name}))
            return None
        where = str(self._at(variable, "")).rstrip(": ")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            # Translators: follows the key file's path and a colon; %(where)s is the file and line that name it.
            message = _("the TSIG key file %(variable)s names (%(where)s) cannot be read; copy it here or give its "
                        "path") % {"variable": variable, "where": where}
            self.cert.problems.append(Problem(str(path), message))
            return None
        key = parse_bind_key(text)
        if key is None:
            # Translators: follows the file's path and a colon: the file is the subject. Keep the BIND syntax as is.
            self.cert.problems.append(Problem(str(path), _('is not a BIND key file (key "name" { algorithm …; '
                                                           'secret "…"; };)')))
        return key

    def _alias(self):
        for key in ("Le_ChallengeAlias", "Le_DomainAlias"):
            aliases = _split(self.conf.get(key))
            if not aliases:
                continue
            distinct = set(aliases)
            if any(alias.startswith("=") for alias in distinct):
                self.problem(key, _("a domain alias (acme.sh --domain-alias) has no CertPanel equivalent; use a "
                                    "challenge alias (_acme-challenge.<name> CNAME to _acme-challenge.<alias>)"))
            elif len(distinct) > 1 or len(aliases) < len(self.cert.domains):
                self.problem(key, _("%(setting)s gives each name its own alias; the panel uses one alias for all "
                                    "names") % {"setting": key})
            else:
                self.cert.challenge_alias = aliases[0]

    # -- install, hooks, renewal ----------------------------------------------------------------------------

    def _install(self):
        install = FoundInstall(
            key_path=self.conf.get("Le_RealKeyPath"), cert_path=self.conf.get("Le_RealCertPath"),
            chain_path=self.conf.get("Le_RealCACertPath"), fullchain_path=self.conf.get("Le_RealFullChainPath"),
            reload_command=self.conf.get("Le_ReloadCmd"))
        renew_hook = self.conf.get("Le_RenewHook")
        if renew_hook and not install.reload_command:
            install.reload_command = renew_hook
        elif renew_hook:
            self.note("Le_RenewHook", _("Le_RenewHook (%(command)s) is not carried over: the reload command "
                                        "Le_ReloadCmd runs after each renewal") % {"command": renew_hook})
        for key in ("Le_PreHook", "Le_PostHook"):
            if self.conf.get(key):
                self.note(key, _("%(setting)s (%(command)s) is not carried over: the panel runs no hooks around "
                                 "an order") % {"setting": key, "command": self.conf.get(key)})
        deploy_hooks = _split(self.conf.get("Le_DeployHook"))
        if deploy_hooks:
            self.note("Le_DeployHook", _("acme.sh deploy hooks (%(hooks)s) are not carried over; add install "
                                         "targets for them") % {"hooks": ", ".join(deploy_hooks)})
        if install.paths() or install.reload_command:
            self.cert.install = install

    def _renewal(self):
        epoch = self.conf.get("Le_NextRenewTime")
        if epoch:
            try:
                self.cert.next_renewal_at = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.UTC)
                return
            except (ValueError, OverflowError, OSError):
                self.note("Le_NextRenewTime", _("Le_NextRenewTime is not a number of seconds"))
        text = self.conf.get("Le_NextRenewTimeStr")
        if text:
            try:
                moment = datetime.datetime.fromisoformat(text)
            except ValueError:
                self.note("Le_NextRenewTimeStr", _("Le_NextRenewTimeStr is not a date; the panel plans the renewal"))
                return
            self.cert.next_renewal_at = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


_BIND_KEY = re.compile(r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{(?P<body>[^}]*)\}\s*;?', re.S)
_BIND_ALGORITHM = re.compile(r'algorithm\s+"?(?P<value>[A-Za-z0-9.-]+)"?\s*;')
_BIND_SECRET = re.compile(r'secret\s+"(?P<value>[A-Za-z0-9+/=\s]+)"\s*;')


def parse_bind_key(text):
    """{"tsig_key_name", "tsig_algorithm", "tsig_secret"} of the first key in a BIND key
    file (what tsig-keygen / ddns-confgen write), or None."""
    text = re.sub(r"(#|//).*", "", text)
    match = _BIND_KEY.search(text)
    if not match:
        return None
    secret = _BIND_SECRET.search(match["body"])
    algorithm = _BIND_ALGORITHM.search(match["body"])
    if not secret:
        return None
    return {"tsig_key_name": match["name"].rstrip("."),
            "tsig_algorithm": algorithm["value"].lower().rstrip(".") if algorithm else "hmac-md5",
            "tsig_secret": "".join(secret["value"].split())}


# -- the whole home -----------------------------------------------------------------------------------------


def read_home(path, confined=False) -> Found:
    """Everything in the acme.sh home at `path`. Reads files only; with `confined` (an uploaded
    archive) only files inside `path`."""
    root = Path(path)
    found = Found(client="acme.sh", root=str(root))
    if not root.is_dir():
        # Translators: follows the path and a colon: the path is the subject.
        found.problems.append(Problem(str(root), _("is not a directory (an acme.sh home holds account.conf, ca/ "
                                                   "and a folder per certificate)")))
        return found
    account_conf = read_conf(root / "account.conf")
    found.problems.extend(account_conf.problems)
    default_server = account_conf.get("DEFAULT_ACME_SERVER")
    folders = list(_domain_folders(root))
    # The directory URL of each ca/ folder, from the URLs the confs name (the folder drops the port).
    urls = {}
    for _folder, _main, conf_path in folders:
        directory_url = read_conf(conf_path).get("Le_API") or default_server
        if directory_url:
            urls.setdefault(ca_folder(directory_url), directory_url)
            urls.setdefault(urlsplit(directory_url).hostname or "", directory_url)
    if default_server:
        urls.setdefault(ca_folder(default_server), default_server)
    accounts = _read_accounts(root, urls, account_conf, found)
    for folder, main, conf_path in folders:
        found.certificates.append(
            _Reader(root, folder, main, conf_path, account_conf, accounts, default_server, confined).read())
    return found
