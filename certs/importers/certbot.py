"""Reads a certbot config dir (/etc/letsencrypt, or a copy of it) into a `Found`.

No database, no network: certs.importers.store writes what this finds. The formats are
certbot's own (certbot 5.8, certbot/_internal/storage.py, renewal.py, account.py, hooks.py):

* renewal/<lineage>.conf, a ConfigObj file: `cert`, `privkey`, `chain`, `fullchain` (paths
  into live/<lineage>/, links into archive/<lineage>/), optional `renew_before_expiry`, and
  [renewalparams]: account, server, authenticator, installer, webroot_path and
  [[webroot_map]], key_type / rsa_key_size / elliptic_curve, renew_hook (what certbot writes
  for --deploy-hook), pre_hook, post_hook, http01_port, pref_challs, manual_auth_hook and the
  plugin's own `dns_<plugin>_*` options.
* accounts/<server host[:port]>/<path>/<id>/: private_key.json (a JWK), regr.json ("uri": the
  account URL), meta.json.
* renewal-hooks/{pre,deploy,post}/: executables certbot runs for every lineage, in name order.

Every path a conf names under the config dir it was written in is read below the dir given,
so a copied or moved config dir reads the same; links are followed only inside it. A DNS
plugin's credentials INI and Google's service account file may be elsewhere and are read
there; with `confined` (an uploaded archive, whose absolute paths are another machine's) they
are read only inside the dir given, and one elsewhere is a Problem saying where to put it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import configobj
import josepy
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from certs.dns.rfc2136 import ALGORITHMS as RFC2136_ALGORITHMS
from certs.importers import inside
from certs.importers.found import Found, FoundAccount, FoundCertificate, FoundInstall, Problem
from certs.models import EC_KEY_TYPES, RSA_KEY_TYPES, ChallengeType, KeyType
from panel.toolkit.pem import same_public_key

LIVE_FILES = ("cert", "privkey", "chain", "fullchain")  # certbot's storage.ALL_FOUR
MAX_LINKS = 8
DEFAULT_CONFIG_DIR = "/etc/letsencrypt"
# A hook script is kept by its text (certs.importers.store makes it a reload preset); one
# argument of a command may be at most 128 KiB on Linux, quoting included.
MAX_HOOK_BYTES = 64 * 1024
MAX_RELOAD_COMMAND_BYTES = 120 * 1024
HOOK_SHELLS = {"sh", "bash", "dash", "ksh", "mksh", "zsh"}
# certbot reuses an account of the old Let's Encrypt endpoint for the new one (constants.LE_REUSE_SERVERS).
LE_REUSE_SERVERS = {
    "acme-v02.api.letsencrypt.org/directory": "acme-v01.api.letsencrypt.org/directory",
    "acme-staging-v02.api.letsencrypt.org/directory": "acme-staging.api.letsencrypt.org/directory",
}
_INTERVAL_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
                   "month": 30 * 86400, "year": 365 * 86400}
_INTERVAL = re.compile(r"(\d+)\s*([a-z]+)")
# Why a conf's cert, chain or privkey cannot be read, by (file, failure of _resolve): whole sentences for the
# translators, translated when the Problem is made. %(kind)s is the conf's setting (cert, chain), %(conf)s the
# conf's file name, %(target)s a path.
_LINK_PROBLEMS = {
    # Translators: keep privkey as is (a setting of certbot's renewal conf); %(conf)s is the conf's file name.
    ("privkey", "loop"): gettext_noop("the private key (privkey in %(conf)s) is a loop of links (%(target)s)"),
    ("privkey", "outside"): gettext_noop("the private key (privkey in %(conf)s) leads outside the config dir, to "
                                         "%(target)s"),
    ("privkey", "dangling"): gettext_noop("the private key (privkey in %(conf)s) is a link to %(target)s, which "
                                          "does not exist"),
    ("privkey", "missing"): gettext_noop("the private key (privkey in %(conf)s) does not exist"),
    # Translators: %(kind)s is cert or chain, a setting of certbot's renewal conf: keep it as is.
    ("file", "loop"): gettext_noop("the %(kind)s file (%(kind)s in %(conf)s) is a loop of links (%(target)s)"),
    ("file", "outside"): gettext_noop("the %(kind)s file (%(kind)s in %(conf)s) leads outside the config dir, to "
                                      "%(target)s"),
    ("file", "dangling"): gettext_noop("the %(kind)s file (%(kind)s in %(conf)s) is a link to %(target)s, which "
                                       "does not exist"),
    ("file", "missing"): gettext_noop("the %(kind)s file (%(kind)s in %(conf)s) does not exist"),
}

# certbot DNS plugin -> (CertPanel provider, {credential INI key without `dns_<plugin>_`: (field, required)}),
# from each plugin's credentials (certbot-dns-*/…/_internal/dns_*.py, lexicon option names).
DNS_PLUGINS = {
    "rfc2136": ("rfc2136", {"server": ("server", True), "port": ("port", False), "name": ("tsig_key_name", True),
                            "secret": ("tsig_secret", True), "algorithm": ("tsig_algorithm", False),
                            "base_domain": ("zone", False)}),
    "digitalocean": ("digitalocean", {"token": ("auth_token", True)}),
    "ovh": ("ovh", {"endpoint": ("auth_entrypoint", True), "application_key": ("auth_application_key", True),
                    "application_secret": ("auth_application_secret", True),
                    "consumer_key": ("auth_consumer_key", True)}),
    "dnsimple": ("dnsimple", {"token": ("auth_token", True)}),
    "dnsmadeeasy": ("dnsmadeeasy", {"api_key": ("auth_username", True), "secret_key": ("auth_token", True)}),
    "luadns": ("luadns", {"email": ("auth_username", True), "token": ("auth_token", True)}),
    "nsone": ("nsone", {"api_key": ("auth_token", True)}),
    "gehirn": ("gehirn", {"api_token": ("auth_token", True), "api_secret": ("auth_secret", True)}),
    "sakuracloud": ("sakuracloud", {"api_token": ("auth_token", True), "api_secret": ("auth_secret", True)}),
}
# Settings that change what certbot asked the CA for and that CertPanel does not carry over: the note
# for each, translated when it is made.
_UNCARRIED = {
    # Translators: keep preferred_chain as is; %(value)s is its value in certbot's renewal conf.
    "preferred_chain": gettext_noop("preferred_chain = %(value)s is not carried over: CertPanel installs the chain "
                                    "the CA offers by default"),
    # Translators: keep must_staple as is; %(value)s is its value in certbot's renewal conf.
    "must_staple": gettext_noop("must_staple = %(value)s is not carried over: CertPanel does not request OCSP "
                                "Must-Staple"),
    # Translators: keep reuse_key as is; %(value)s is its value in certbot's renewal conf.
    "reuse_key": gettext_noop("reuse_key = %(value)s is not carried over: CertPanel makes a new key at every "
                              "renewal"),
}


def read_config_dir(path, confined=False) -> Found:
    """Everything a certbot config dir holds: its accounts and one FoundCertificate per renewal conf.
    `confined` (an uploaded archive): no file outside `path` is read."""
    root = Path(os.path.abspath(path))
    found = Found(client="certbot", root=str(root))
    if not root.is_dir():
        found.problems.append(Problem(str(root), _("is not a directory (give certbot's config dir, "
                                                   "usually /etc/letsencrypt)")))
        return found
    reader = _ConfigDir(root, found, confined)
    confs = sorted((root / "renewal").glob("*.conf")) if (root / "renewal").is_dir() else []
    if not confs:
        # Translators: keep <name>.conf as is: the renewal confs' file names.
        found.problems.append(Problem(str(root / "renewal"), _("holds no <name>.conf: nothing to import")))
    lineages = [(conf, reader.parse_conf(conf)) for conf in confs]
    reader.read_accounts(lineages)
    for conf, parsed in lineages:
        found.certificates.append(reader.lineage(conf, parsed))
    return found


class _ConfigDir:
    def __init__(self, root: Path, found: Found, confined=False):
        self.root = root
        self.found = found
        self.confined = confined
        self.accounts: dict[tuple[str, str], FoundAccount] = {}  # (server path, id) -> account
        hooks = root / "renewal-hooks"
        self.pre_hooks, self.deploy_hooks, self.post_hooks = (
            _hook_scripts(hooks / kind) for kind in ("pre", "deploy", "post"))
        self.hook_texts = {script: _hook_text(script) for script in (*self.deploy_hooks, *self.post_hooks)}

    # --- renewal confs
    def parse_conf(self, conf: Path):
        """The conf as ConfigObj reads it (as certbot does), or the Problem that stops it."""
        try:
            return configobj.ConfigObj(str(conf), encoding="utf-8", default_encoding="utf-8")
        except configobj.ConfigObjError as exc:
            first = (getattr(exc, "errors", None) or [exc])[0]
            message = re.sub(r"\s*at line \d+\.?$", "", str(first))
            if message.startswith("Invalid line"):  # ConfigObj quotes the line, which may hold a secret
                message = _("this line is neither a `key = value` setting nor a [section]")
            # Translators: %(error)s is what is wrong with the line (ConfigObj's own words are English).
            return Problem(str(conf), _("%(error)s; certbot cannot read this file either, fix or remove the line")
                           % {"error": message}, getattr(first, "line_number", None))
        except (OSError, UnicodeDecodeError) as exc:
            return Problem(str(conf), _("cannot be read: %(error)s") % {"error": exc})

    def lineage(self, conf: Path, parsed) -> FoundCertificate:
        name = conf.name[: -len(".conf")]
        cert = FoundCertificate(name=name, source=str(conf))
        if isinstance(parsed, Problem):
            cert.problems.append(parsed)
            return cert
        params = parsed.get("renewalparams", {})
        missing = [kind for kind in LIVE_FILES if not parsed.get(kind)]
        if missing:
            # Translators: the last two of a list of alternatives, as in "cert, chain or privkey".
            names = get_text_list(missing, _("or"))
            # Translators: %(missing)s is one or more of %(all)s (file settings of the conf, keep them as is).
            cert.problems.append(Problem(str(conf), _("names no %(missing)s file (certbot writes all four: %(all)s)")
                                         % {"missing": names, "all": ", ".join(LIVE_FILES)}))
            return cert
        origins = self._origins(parsed, params)
        self._read_files(cert, parsed, origins)
        if cert.cert_pem:
            self._key_settings(cert, conf, params)
        self._account(cert, conf, params)
        self._method(cert, conf, params, origins)
        self._install(cert, parsed, params)
        self._schedule(cert, conf, parsed)
        for key, message in _UNCARRIED.items():
            if params.get(key) not in (None, "", "None", "False"):
                cert.notes.append(Problem(str(conf), _(message) % {"value": params[key]}, _line_of(conf, key)))
        if not cert.problems:
            # Translators: keep certbot.timer as is (the systemd timer that runs certbot's renewals).
            cert.notes.append(Problem(str(conf), _("turn off certbot's own renewal for this certificate (certbot.timer "
                                                   "or its cron job, or delete this conf once imported), or both will "
                                                   "renew it")))
        return cert

    def _origins(self, parsed, params) -> list[str]:
        """The config dir(s) the conf was written in: their paths are read below `root` instead."""
        candidates = [params.get("config_dir", ""), DEFAULT_CONFIG_DIR]
        live = Path(str(parsed["cert"]))
        if live.is_absolute() and len(live.parts) > 3 and live.parts[-3] == "live":
            candidates.append(str(live.parents[2]))
        return [os.path.normpath(c) for c in candidates if c and os.path.isabs(c)]

    def local(self, path: str, origins) -> Path:
        """Where `path`, as the conf wrote it, is in the dir given."""
        normalized = os.path.normpath(path)
        if not os.path.isabs(normalized):
            return self.root / normalized
        for origin in origins:
            if normalized == origin or normalized.startswith(origin.rstrip("/") + "/"):
                return self.root / os.path.relpath(normalized, origin)
        return Path(normalized)

    def _resolve(self, link: Path, origins) -> tuple[Path | None, tuple[str, str]]:
        """Follow links (rebased into `root`) to the file; (None, (failure, path)) when that fails, the failure
        one of _LINK_PROBLEMS'."""
        path, first = link, None
        for _ in range(MAX_LINKS):
            if not path.is_symlink():
                break
            target = os.readlink(path)
            first = first or target
            path = self.local(target, origins) if os.path.isabs(target) else Path(
                os.path.normpath(path.parent / target))
        else:
            return None, ("loop", first)
        real = Path(os.path.realpath(path))
        root = self.root.resolve()
        if real != root and root not in real.parents:
            return None, ("outside", str(real))
        if not real.is_file():
            return None, ("dangling", first) if first else ("missing", "")
        return real, ("", "")

    def _read_files(self, cert: FoundCertificate, parsed, origins) -> None:
        texts = {}
        for kind in ("cert", "chain", "privkey"):
            link = self.local(str(parsed[kind]), origins)
            real, (failure, target) = self._resolve(link, origins)
            if real is None:
                message = _LINK_PROBLEMS[("privkey" if kind == "privkey" else "file", failure)]
                cert.problems.append(Problem(str(link), _(message) % {"kind": kind, "conf": f"{cert.name}.conf",
                                                                      "target": target}))
                continue
            try:
                texts[kind] = real.read_bytes()
            except OSError as exc:
                cert.problems.append(Problem(str(real), _("cannot be read: %(error)s") % {"error": exc.strerror}))
        if len(texts) < 3:
            return
        try:
            leaf = x509.load_pem_x509_certificate(texts["cert"])
            chain = x509.load_pem_x509_certificates(texts["chain"])
        except ValueError:
            cert.problems.append(Problem(str(self.local(str(parsed["cert"]), origins)),
                                 _("the certificate or its chain is not PEM")))
            return
        try:
            key = serialization.load_pem_private_key(texts["privkey"], password=None)
        except (ValueError, TypeError):
            cert.problems.append(Problem(str(self.local(str(parsed["privkey"]), origins)),
                                 _("the private key is not a PEM key without a password")))
            return
        if not same_public_key(key.public_key(), leaf.public_key()):
            cert.problems.append(Problem(str(self.local(str(parsed["privkey"]), origins)),
                                         _("the private key does not belong to the certificate")))
            return
        cert.cert_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
        cert.chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
        cert.key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
        cert.domains = _names(leaf)
        cert.key_type = KeyType.of_key(key) or ""
        if not cert.key_type:
            cert.problems.append(Problem(str(self.local(str(parsed["privkey"]), origins)),
                                         # Translators: %(key)s is the key's algorithm and size or curve, e.g.
                                         # "RSA 1024" or "EC secp521r1".
                                         _("the key is %(key)s; CertPanel renews with EC P-256 or P-384, or RSA 2048, "
                                           "3072 or 4096 keys: issue this certificate again in the panel")
                                         % {"key": _describe_key(key)}))

    def _key_settings(self, cert: FoundCertificate, conf: Path, params) -> None:
        """key_type / rsa_key_size / elliptic_curve as certbot would renew; the actual key decides."""
        if "key_type" not in params and "rsa_key_size" not in params and "elliptic_curve" not in params:
            return
        if params.get("key_type", "rsa") == "ecdsa":  # certbot's defaults: secp256r1, RSA 2048
            curve = params.get("elliptic_curve", "secp256r1")
            said, wrote = EC_KEY_TYPES.get(curve, ""), f"key_type = ecdsa, elliptic_curve = {curve}"
        else:
            size = str(params.get("rsa_key_size", "2048"))
            said = RSA_KEY_TYPES.get(int(size) if size.isdigit() else 0, "")
            wrote = f"key_type = rsa, rsa_key_size = {size}"
        if cert.key_type and said != cert.key_type:
            # Translators: %(settings)s are the conf's settings as written, e.g. "key_type = rsa, rsa_key_size = 4096".
            cert.notes.append(Problem(str(conf), _("says %(settings)s, but the key is %(key_type)s: renewals keep the "
                                                   "key's type") % {"settings": wrote,
                                                                    "key_type": KeyType(cert.key_type).label},
                                      _line_of(conf, "key_type")))

    # --- accounts
    def read_accounts(self, lineages) -> None:
        """Every account under accounts/, with the directory URL of the confs that use it."""
        servers = {}  # (accounts/ folder, account id) -> the server URL a conf uses it with
        for _, parsed in lineages:
            if not isinstance(parsed, Problem):
                params = parsed.get("renewalparams", {})
                if params.get("account") and params.get("server"):
                    for folder in _server_paths(params["server"]):
                        servers.setdefault((folder, params["account"]), params["server"])
        top = self.root / "accounts"
        if not top.is_dir():
            return
        seen = {}  # real path of an account dir -> its FoundAccount (LE's v01/v02 dirs are links)
        for directory, _, files in os.walk(top, followlinks=True):
            if "private_key.json" not in files:
                continue
            account_dir = Path(directory)
            server_path = str(account_dir.parent.relative_to(top))
            account_id = account_dir.name
            real = os.path.realpath(account_dir)
            if real not in seen:
                seen[real] = self._account_from(account_dir, server_path, servers.get((server_path, account_id)))
            if seen[real] is not None:
                self.accounts[(server_path, account_id)] = seen[real]
        self.found.accounts.extend(a for a in seen.values() if a is not None)

    def _account_from(self, directory: Path, server_path: str, server: str | None) -> FoundAccount | None:
        key_file = directory / "private_key.json"
        try:
            jwk = josepy.JWK.json_loads(key_file.read_text())
            key_pem = jwk.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
        except (OSError, ValueError, TypeError, AttributeError, josepy.errors.Error):
            self.found.problems.append(Problem(str(key_file), _("is not a private key in JWK form as certbot "
                                                                "writes it: this account cannot be imported")))
            return None
        regr_file = directory / "regr.json"
        try:
            regr = json.loads(regr_file.read_text())
        except (OSError, ValueError):
            self.found.problems.append(Problem(str(regr_file), _("is missing or not JSON: the account's URL is "
                                                                 "unknown, so this account cannot be imported")))
            return None
        contact = [c for c in (regr.get("body") or {}).get("contact", []) if str(c).startswith("mailto:")]
        return FoundAccount(directory_url=server or _directory_for(server_path), key_pem=key_pem,
                            account_url=str(regr.get("uri", "")), email=contact[0][7:] if contact else "",
                            source=str(key_file))

    def _account(self, cert: FoundCertificate, conf: Path, params) -> None:
        account_id, server = params.get("account", ""), params.get("server", "")
        if not account_id or not server:
            # Translators: keep [renewalparams], account and server as is (a section and settings of the conf).
            cert.problems.append(Problem(str(conf), _("[renewalparams] names no account or no server: the account "
                                                      "to renew with is unknown"), _line_of(conf, "account")))
            return
        folders = _server_paths(server)
        for folder in folders:
            if (folder, account_id) in self.accounts:
                cert.account = self.accounts[(folder, account_id)]
                return
        cert.problems.append(Problem(str(self.root / "accounts" / folders[0] / account_id),
                                     # Translators: keep "account =" and accounts/ as is (a setting of the conf, a
                                     # folder of the config dir).
                                     _("account %(account)s (account = in %(conf)s) is not there or could not be "
                                       "read: copy the whole config dir, accounts/ included")
                                     % {"account": account_id, "conf": conf.name}))

    # --- validation method
    def _method(self, cert: FoundCertificate, conf: Path, params, origins) -> None:
        authenticator = str(params.get("authenticator", ""))
        # certbot before 1.0 named third-party plugins "certbot-dns-x:dns-x", their options "certbot_dns_x:dns_x_…".
        authenticator = authenticator.split(":", 1)[-1]
        options = {key.split(":", 1)[-1]: value for key, value in params.items() if isinstance(value, str)}
        line = _line_of(conf, "authenticator")
        if authenticator == "webroot":
            self._webroot(cert, conf, params)
        elif authenticator == "standalone":
            cert.challenge = ChallengeType.HTTP01_STANDALONE
            port = str(params.get("http01_port", "80"))
            if port != "80":
                # Translators: keep http01_port and CERTPANEL_STANDALONE_PORT as is (certbot's, CertPanel's settings).
                cert.notes.append(Problem(str(conf), _("certbot answered on port %(port)s (http01_port); CertPanel "
                                                       "answers on its CERTPANEL_STANDALONE_PORT") % {"port": port},
                                          _line_of(conf, "http01_port")))
        elif authenticator in ("nginx", "apache"):
            cert.challenge = ChallengeType.HTTP01_NGINX if authenticator == "nginx" else ChallengeType.HTTP01_APACHE
            cert.problems.append(Problem(str(conf), _(
                # Translators: %(authenticator)s is nginx or apache; keep the certbot command line as is.
                "certbot's %(authenticator)s authenticator finds the server block for %(names)s itself; CertPanel's "
                "http-01-%(authenticator)s edits one config file you name. Switch the lineage to webroot first "
                "(certbot reconfigure --cert-name %(name)s --webroot -w DOCUMENT_ROOT) and import again, or issue it "
                "in the panel with http-01-%(authenticator)s and that file")
                % {"authenticator": authenticator, "names": ", ".join(cert.domains), "name": cert.name}, line))
        elif authenticator == "manual":
            self._manual(cert, conf, params)
        elif authenticator.startswith("dns-"):
            self._dns(cert, conf, authenticator[len("dns-"):], options, origins)
        elif not authenticator:
            # Translators: keep authenticator, webroot and standalone as is (a setting of the conf and its values).
            cert.problems.append(Problem(str(conf), _("authenticator = (none) has no CertPanel counterpart: use "
                                                      "webroot, standalone or a DNS plugin, or issue it in the panel"),
                                         line))
        else:
            # Translators: keep authenticator, webroot and standalone as is (a setting of the conf and its values).
            cert.problems.append(Problem(str(conf), _("authenticator = %(authenticator)s has no CertPanel counterpart: "
                                                      "use webroot, standalone or a DNS plugin, or issue it in the "
                                                      "panel") % {"authenticator": authenticator}, line))

    def _webroot(self, cert: FoundCertificate, conf: Path, params) -> None:
        cert.challenge = ChallengeType.HTTP01_WEBROOT
        mapping = params.get("webroot_map", {})
        paths = params.get("webroot_path", [])
        paths = [p for p in ([paths] if isinstance(paths, str) else paths) if p]
        # A name without an entry in the map gets the last -w (certbot's webroot plugin). Without
        # the certificate's names (its files are missing), the map's names stand in.
        names = cert.domains or list(mapping)
        roots = {os.path.normpath(mapping.get(name, paths[-1] if paths else "")) for name in names}
        roots.discard(".")
        if len(roots) == 1:
            cert.webroot = roots.pop()
        elif not roots:
            # Translators: keep authenticator = webroot, webroot_path and [[webroot_map]] as is (the conf's settings).
            cert.problems.append(Problem(str(conf), _("authenticator = webroot without webroot_path or "
                                                      "[[webroot_map]]: the document root is unknown"),
                                         _line_of(conf, "authenticator")))
        else:
            per_root = {}
            for name in names:
                per_root.setdefault(os.path.normpath(mapping.get(name, paths[-1] if paths else "")), []).append(name)
            detail = "; ".join(f"{root}: {', '.join(names)}" for root, names in sorted(per_root.items()))
            cert.problems.append(Problem(str(conf), _(
                # Translators: %(roots)s lists each document root with its names; keep the certbot command line as is.
                "[[webroot_map]] gives different document roots (%(roots)s); CertPanel uses one document root per "
                "certificate: split it into one certificate per document root (certbot certonly --cert-name … "
                "-w ROOT -d …) or serve the names from one root, then import again") % {"roots": detail},
                _line_of(conf, "[[webroot_map]]")))

    def _manual(self, cert: FoundCertificate, conf: Path, params) -> None:
        challenges = params.get("pref_challs", [])
        challenges = {c.strip().lower() for c in ([challenges] if isinstance(challenges, str) else challenges)}
        if not challenges & {"dns", "dns-01"}:  # certbot's manual plugin defaults to HTTP-01
            # Translators: keep authenticator = manual and the certbot command line as is.
            cert.problems.append(Problem(str(conf), _("authenticator = manual with HTTP-01: CertPanel has no manual "
                                                      "HTTP-01; switch the lineage to webroot (certbot reconfigure "
                                                      "--cert-name %(name)s --webroot -w DOCUMENT_ROOT) and import "
                                                      "again") % {"name": cert.name}, _line_of(conf, "authenticator")))
            return
        cert.challenge = ChallengeType.DNS01_MANUAL
        for hook in ("manual_auth_hook", "manual_cleanup_hook"):
            if params.get(hook):
                # Translators: %(hook)s is manual_auth_hook or manual_cleanup_hook, %(command)s its command line.
                cert.notes.append(Problem(str(conf), _("%(hook)s = %(command)s does not carry over: CertPanel shows "
                                                       "the TXT records to add by hand at each renewal")
                                          % {"hook": hook, "command": params[hook]}, _line_of(conf, hook)))

    def _dns(self, cert: FoundCertificate, conf: Path, plugin: str, options: dict, origins) -> None:
        cert.challenge = ChallengeType.DNS01
        line = _line_of(conf, "authenticator")
        if plugin == "route53":
            cert.problems.append(Problem(str(conf), _(
                "dns-route53 reads AWS's own configuration (~/.aws/credentials, the environment or an instance "
                "role), not files certbot keeps: add a Route 53 DNS credential in the panel and issue this "
                "certificate with it"), line))
            return
        if plugin not in DNS_PLUGINS and plugin not in ("cloudflare", "google", "linode"):
            # Translators: %(plugin)s is the name of a certbot DNS plugin, e.g. cloudxns.
            cert.problems.append(Problem(str(conf), _("no CertPanel DNS provider is known for certbot's dns-%(plugin)s "
                                                      "plugin: add the provider's DNS credential in the panel and "
                                                      "issue this certificate with it") % {"plugin": plugin}, line))
            return
        option = f"dns_{plugin}_credentials"
        if not options.get(option):
            # Translators: %(option)s is a setting of the conf, e.g. dns_cloudflare_credentials.
            cert.problems.append(Problem(str(conf), _("names no %(option)s: the %(plugin)s credentials are unknown")
                                         % {"option": option, "plugin": plugin}, line))
            return
        path = self.local(options[option], origins)
        if self._elsewhere(cert, conf, option, options[option], path, origins):
            return
        values = _read_credentials(path, cert)
        if values is None:
            return
        prefix = f"dns_{plugin}_"
        values = {key.split(":", 1)[-1]: value for key, value in values.items()}  # the old prefix again
        given = {key[len(prefix):]: str(value).strip() for key, value in values.items()
                 if key.startswith(prefix) and str(value).strip()}
        mapped = self._map_dns(cert, path, plugin, given, origins)
        if mapped is not None:
            cert.dns_provider, cert.dns_credentials = mapped
            # The credential's name in the panel: a file of the dir given is named inside it, so an uploaded
            # archive's temporary directory does not end up in the name.
            shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            cert.dns_source = f"certbot dns-{plugin} ({shown})"

    def _map_dns(self, cert, path: Path, plugin: str, given: dict, origins):
        """(provider code, fields) from the credentials, or None after a Problem saying what is missing."""
        def missing(keys):
            # Translators: the last two of a list, as in "dns_ovh_application_secret and dns_ovh_consumer_key".
            options = get_text_list([f"dns_{plugin}_{k}" for k in keys], _("and"))
            # Translators: %(options)s is one or more settings of the credentials file, e.g. dns_ovh_consumer_key.
            cert.problems.append(Problem(str(path), _("lacks %(options)s: certbot could not renew with it either")
                                         % {"options": options}))

        if plugin == "cloudflare":  # an API token, or the Global API key with the account's email
            if given.get("api_token"):
                return "cloudflare", {"auth_token": given["api_token"]}
            if given.get("email") and given.get("api_key"):
                return "cloudflare", {"auth_username": given["email"], "auth_token": given["api_key"]}
            # Translators: keep dns_cloudflare_api_token, dns_cloudflare_email and dns_cloudflare_api_key as is.
            cert.problems.append(Problem(str(path), _("lacks dns_cloudflare_api_token (or dns_cloudflare_email with "
                                                      "dns_cloudflare_api_key): certbot could not renew with it "
                                                      "either")))
            return None
        if plugin == "google":  # a service account's JSON file; lexicon takes its content base64-encoded
            if not given.get("credentials"):
                return missing(["credentials"])
            source = self.local(given["credentials"], origins)
            if self._elsewhere(cert, path, "dns_google_credentials", given["credentials"], source, origins):
                return None
            try:
                info = source.read_bytes()
            except OSError:
                cert.problems.append(Problem(str(source), _("the Google service account file is missing")))
                return None
            return "googleclouddns", {"auth_service_account_info": "base64::" + base64.b64encode(info).decode()}
        if plugin == "linode":  # certbot's rule: version 4, or a 64-hex-digit key, is API v4
            if not given.get("key"):
                return missing(["key"])
            v4 = given.get("version") == "4" or (not given.get("version") and re.fullmatch(r"[0-9a-f]{64}",
                                                                                            given["key"]))
            return ("linode4" if v4 else "linode"), {"auth_token": given["key"]}
        provider, fields = DNS_PLUGINS[plugin]
        absent = [key for key, (_, required) in fields.items() if required and not given.get(key)]
        if absent:
            return missing(absent)
        values = {field: given[key] for key, (field, _) in fields.items() if given.get(key)}
        if plugin == "rfc2136":
            algorithm = values.get("tsig_algorithm", "HMAC-MD5").lower()  # certbot's default
            if algorithm not in RFC2136_ALGORITHMS:
                # Translators: keep dns_rfc2136_algorithm as is; %(algorithms)s lists TSIG algorithm names.
                cert.problems.append(Problem(str(path), _("dns_rfc2136_algorithm = %(algorithm)s is not one CertPanel "
                                                          "signs with (%(algorithms)s)")
                                             % {"algorithm": values["tsig_algorithm"],
                                                "algorithms": ", ".join(RFC2136_ALGORITHMS)}))
                return None
            values["tsig_algorithm"] = algorithm
        return provider, values

    def _elsewhere(self, cert, conf: Path, option: str, named: str, path: Path, origins) -> bool:
        """Confined, a file `option` names outside the dir given is not read: True after a Problem at
        that line of `conf` saying where in the archive the reader would read it."""
        if not self.confined or inside(path, self.root):
            return False
        name = os.path.basename(os.path.normpath(named))
        # Translators: keep "%(option)s = %(setting)s" (a line of certbot's conf) and the command as is.
        message = _("%(option)s names %(path)s, outside the uploaded config dir, so it is not read from this server: "
                    "put the file into the archive as %(suggested)s and change this line to %(option)s = "
                    "%(setting)s, or run “manage.py import_certbot PATH” on the server, where the file is")
        cert.problems.append(Problem(str(conf), message % {
            "option": option, "path": named, "suggested": str(self.root / name),
            "setting": os.path.join(origins[0], name)}, _line_of(conf, option)))
        return True

    # --- install target and schedule
    def _install(self, cert: FoundCertificate, parsed, params) -> None:
        lineage_dir = os.path.dirname(str(parsed["cert"]))
        commands, parts, texts = [], [], []
        # What certbot runs after renewing this lineage (hooks.deploy_hook, then hooks.post_hook):
        # renewal-hooks/deploy/* then renew_hook, renewal-hooks/post/* then post_hook, each once.
        # A script is carried over by its text, never by its path: an uploaded archive is unpacked
        # into a temporary directory that is gone after the import (and that others could write to).
        for scripts, option in ((self.deploy_hooks, "renew_hook"), (self.post_hooks, "post_hook")):
            for script in scripts:
                hook = self.hook_texts[script]
                if isinstance(hook, Problem):
                    cert.problems.append(hook)
                    continue
                command = _hook_command(script, hook)
                if command not in commands:
                    commands.append(command)
                    parts.append(f"{script.parent.name}/{script.name}")
                    texts.append(hook)
            command = str(params.get(option) or "")
            if command and command not in commands:
                commands.append(command)
                parts.append(option)
        text = "\n".join(commands)
        if "RENEWED_" in text:
            # certbot sets these for its deploy hooks; the preset's shell gets them the same way.
            text = (f"export RENEWED_LINEAGE={shlex.quote(lineage_dir)} "
                    f"RENEWED_DOMAINS={shlex.quote(' '.join(cert.domains))}\n{text}")
        if len(text.encode()) > MAX_RELOAD_COMMAND_BYTES:
            cert.problems.append(Problem(str(self.root / "renewal-hooks"), _(
                "the hooks together make a reload command of %(size)d KiB, more than the %(limit)d KiB one command "
                "may have: shorten them, or have one of them call a program installed on the server")
                % {"size": len(text.encode()) // 1024, "limit": MAX_RELOAD_COMMAND_BYTES // 1024}))
        # The preset's name: the text of scripts is too long to read as one.
        name = "certbot: " + ", ".join(parts) if texts else ""
        cert.install = FoundInstall(key_path=str(parsed["privkey"]), cert_path=str(parsed["cert"]),
                                    chain_path=str(parsed["chain"]), fullchain_path=str(parsed["fullchain"]),
                                    reload_command=text, reload_name=name)
        conf = Path(cert.source)
        for script in self.pre_hooks:
            cert.notes.append(Problem(str(script), _("this pre-hook does not carry over: CertPanel runs no command "
                                                     "before a renewal")))
        if params.get("pre_hook"):
            # Translators: keep pre_hook as is (a setting of the conf); %(command)s is its command line.
            cert.notes.append(Problem(str(conf), _("pre_hook = %(command)s does not carry over: CertPanel runs no "
                                                   "command before a renewal") % {"command": params["pre_hook"]},
                                      _line_of(conf, "pre_hook")))
        if params.get("installer") not in (None, "", "None", "null"):
            # Translators: keep installer as is (a setting of the conf); %(installer)s is its value, e.g. nginx.
            cert.notes.append(Problem(str(conf), _("installer = %(installer)s: the server config keeps reading "
                                                   "%(directory)s/, which the install target keeps current")
                                      % {"installer": params["installer"], "directory": lineage_dir},
                                      _line_of(conf, "installer")))

    def _schedule(self, cert: FoundCertificate, conf: Path, parsed) -> None:
        interval = parsed.get("renew_before_expiry")
        if not interval or not cert.cert_pem:
            return
        seconds = _interval_seconds(str(interval))
        if seconds is None:
            # Translators: keep renew_before_expiry as is (a setting of the conf).
            cert.notes.append(Problem(str(conf), _("renew_before_expiry = %(interval)s is not an interval CertPanel "
                                                   "reads (e.g. 30 days): the panel's own rule applies")
                                      % {"interval": interval}, _line_of(conf, "renew_before_expiry")))
            return
        leaf = x509.load_pem_x509_certificate(cert.cert_pem.encode())
        cert.next_renewal_at = leaf.not_valid_after_utc - datetime.timedelta(seconds=seconds)


def _server_paths(server: str) -> list[str]:
    """The accounts/ folders certbot looks in for a server URL (configuration.server_path, then LE's reuse)."""
    parsed = urlparse(server)
    path = os.path.normpath(parsed.netloc + parsed.path)
    return [path, LE_REUSE_SERVERS[path]] if path in LE_REUSE_SERVERS else [path]


def _directory_for(server_path: str) -> str:
    """The directory URL of an accounts/ folder no conf names; old LE endpoints stand for the new ones."""
    reused = {old: new for new, old in LE_REUSE_SERVERS.items()}
    return "https://" + reused.get(server_path, server_path)


def _hook_scripts(directory: Path) -> list[Path]:
    """Executables certbot runs from a renewal-hooks folder, in its order (hooks.list_hooks)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and os.access(p, os.X_OK) and not p.name.endswith("~"))


def _hook_text(script: Path) -> str | Problem:
    """A hook script's text, or the Problem that stops it from being carried over: the panel keeps
    a hook as text it runs with the script's shell, so a program or a huge file cannot be kept."""
    try:
        with open(script, "rb") as file:
            data = file.read(MAX_HOOK_BYTES + 1)
    except OSError as exc:
        return Problem(str(script), _("this hook cannot be read (%(error)s)") % {"error": exc.strerror or exc})
    if len(data) > MAX_HOOK_BYTES:
        return Problem(str(script), _("this hook is larger than %(limit)d KiB, the most the panel keeps of a hook: "
                                      "shorten it, or have it call a program installed on the server")
                       % {"limit": MAX_HOOK_BYTES // 1024})
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return Problem(str(script), _("this hook is not a text script (a compiled program?): the panel keeps a "
                                      "hook's text, not a path to it. Replace it with a shell script that runs the "
                                      "program, installed on the server"))
    interpreter = _interpreter(text)
    program = Path(interpreter[0]).name
    if program == "env":  # #!/usr/bin/env bash
        program = next((Path(word).name for word in interpreter[1:] if not word.startswith("-")), "")
    if program not in HOOK_SHELLS:
        return Problem(str(script), _("this hook runs with %(interpreter)s: the panel carries over shell scripts "
                                      "only (%(shells)s). Rewrite it as one, or have it call the program")
                       % {"interpreter": " ".join(interpreter), "shells": ", ".join(sorted(HOOK_SHELLS))})
    return text


def _interpreter(text: str) -> list[str]:
    """What runs a script: its #! line's words (`/usr/bin/env bash` included), else /bin/sh, as
    for certbot's shell when the kernel finds no #! line."""
    first = text.split("\n", 1)[0]
    words = first[2:].split() if first.startswith("#!") else []
    return words or ["/bin/sh"]


def _hook_command(script: Path, text: str) -> str:
    """The shell line that runs a hook script's text as certbot ran the file: its interpreter,
    its name as $0, and the environment the preset's shell has."""
    return shlex.join([*_interpreter(text), "-c", text, script.name])


def _read_credentials(path: Path, cert: FoundCertificate) -> dict | None:
    """A DNS plugin's credentials INI (certbot reads it with ConfigObj too). Problems never quote its lines."""
    try:
        return dict(configobj.ConfigObj(str(path), encoding="utf-8", file_error=True))
    except OSError:
        cert.problems.append(Problem(str(path), _("the DNS credentials file does not exist or cannot be read")))
    except configobj.ConfigObjError as exc:
        first = (getattr(exc, "errors", None) or [exc])[0]
        cert.problems.append(Problem(str(path), _("the DNS credentials file cannot be parsed here"),
                                     getattr(first, "line_number", None)))
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _line_of(conf: Path, key: str) -> int | None:
    """The 1-based line where `key` is set (or the section starts) in a conf, for the report."""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*(=|$)" if not key.startswith("[") else rf"^\s*{re.escape(key)}")
    for number, line in enumerate(_read_text(conf).splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def _names(leaf: x509.Certificate) -> list[str]:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    common = [a.value for a in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return list(dict.fromkeys([*common, *names]))  # certbot lists the common name first


def _describe_key(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def _interval_seconds(text: str) -> int | None:
    """certbot's renew_before_expiry ("30 days", "2 weeks 3 days", "30": days); None if unreadable."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text) * 86400
    parts = _INTERVAL.findall(text)
    if not parts or re.sub(r"\band\b|[\s,]", "", _INTERVAL.sub("", text)):
        return None
    units = [_INTERVAL_UNITS.get(unit.removesuffix("s")) for _, unit in parts]
    if None in units:
        return None
    return sum(int(amount) * unit for (amount, _), unit in zip(parts, units))
