"""Every DNS provider that dns-lexicon ships, as a DnsProvider.

The list of providers is lexicon's own (`find_providers()`), and each provider's
credential fields are derived from the command-line options its lexicon module
declares in `configure_parser()`:

* name: the option's `dest` (`--auth-token` -> `auth_token`), which is also the key
  lexicon reads the value under, so credentials are passed through unchanged;
* label: the name without the `auth_` prefix, made readable (`zone_id` -> "Zone ID");
* sensitive: the name says it is a secret (token, secret, password, key, ...), unless
  it names an identifier or a path (`*_id`, `*_file`, ...);
* required: lexicon marks no option required, so a credential option (`auth_*`, a
  secret, a server address) is required unless it has a default, is a flag, or its help
  text calls it optional or an alternative ("only used if ...", "if empty ...");
  `ALTERNATIVE_CREDENTIALS` lists the providers whose options are one-of sets;
* help and default: lexicon's help text, choices and default;
* server_path: `SERVER_PATHS` says which values of an option name a file or a UNIX
  socket on this server (administrators only), and `ADMIN_ONLY` lists the providers that
  work on this server's own files or credentials whatever is typed.

Every provider also gets an optional `zone` field. When it is blank the zone is the
registrable domain of the record name, found with tldextract's bundled copy of the
public suffix list: nothing is downloaded at run time.

The providers most panel users want get first-class labels, help and timeouts in
`FIRST_CLASS`. The lexicon provider class is used directly (not lexicon's `Client`),
so that the zone is the one computed here and no configuration is read from the
environment or from files in the working directory.
"""

import argparse
import logging
import re
from contextlib import contextmanager
from typing import ClassVar
from urllib.parse import quote, quote_plus

import requests
import tldextract
import tldextract.tldextract
from django.utils.translation import gettext_lazy as _
from lexicon._private.discovery import find_providers, load_provider_module
from lexicon.config import ConfigResolver

from certs.dns.base import DnsProvider, DnsProviderError, Field

logger = logging.getLogger(__name__)

# tldextract's default is to download the public suffix list on first use. Only the
# snapshot bundled with the package is used, and no cache directory is written.
OFFLINE_SUFFIXES = tldextract.TLDExtract(
    cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True, include_psl_private_domains=True
)
# Some lexicon providers call the module-level `tldextract.extract()` (GoDaddy does);
# that one goes through this module global, so it has to be offline too.
tldextract.tldextract.TLD_EXTRACTOR = OFFLINE_SUFFIXES

# "auto" is not a DNS provider but a dispatcher that looks up a zone's name servers
# and then acts as one of the others; the user picks that provider directly instead.
EXCLUDED = {"auto"}

DEFAULT_PROPAGATION_TIMEOUT = 300
DETAIL_LENGTH = 160  # of a provider's error in a message

_NOT_SECRET_SUFFIXES = ("id", "file", "user", "username", "region", "type", "profile", "fingerprint",
                        "server", "host", "endpoint", "url", "entrypoint", "ip")
_SECRET_WORDS = ("token", "secret", "password", "pass", "psw", "key", "2fa", "otp", "account_info", "credential")
_OPTIONAL_HINTS = re.compile(
    r"\boptional\b|only used if|if empty|if not set|only\)|alternative|might be needed"
    r"|\bif set\b|if the private key is encrypted|\bdefault\b",
    re.IGNORECASE,
)
_LOCATION = re.compile(r"(?:^|_)(?:server|host|endpoint|filename)$|^resource_group$")
_ACRONYMS = {"id": "ID", "api": "API", "ip": "IP", "url": "URL", "dns": "DNS", "ib": "Infoblox",
             "pdns": "PowerDNS", "2fa": "2FA", "totp": "TOTP", "psw": "password", "subid": "sub-ID"}

# Providers that accept one of several credential sets: lexicon's authenticate() says
# which one is missing, so none of these options is required on its own.
ALTERNATIVE_CREDENTIALS = {
    "cloudns": {"auth_id", "auth_subid", "auth_subuser"},
    "desec": {"auth_token", "auth_username", "auth_password"},
    "dnsimple": {"auth_token", "auth_username", "auth_password", "auth_2fa"},
    "mythicbeasts": {"auth_token", "auth_username", "auth_password"},
    "oci": {"auth_config_file", "auth_profile", "auth_user", "auth_tenancy", "auth_fingerprint",
            "auth_key_content", "auth_key_file", "auth_pass_phrase", "auth_region", "auth_type"},
    "ultradns": {"auth_token", "auth_username", "auth_password"},
    "zonomi": {"auth_entrypoint"},
}

# Values that lexicon opens as a file or a UNIX socket on this server, with the worker's
# rights: given by a user they would read keys or zone files of others, or talk to local
# daemons. Option -> which of its values are such a path.
SERVER_PATHS = {
    # "file::/path" is read; "base64::..." is the content itself
    "googleclouddns": {"auth_service_account_info": lambda value: value.startswith("file::")},
    # anything but "base64::..." is opened as a key file
    "transip": {"auth_api_key": lambda value: not value.startswith("base64::")},
    # a value that exists as a path is used as HTTP over that UNIX socket; only a URL is safe
    "powerdns": {"pdns_server": lambda value: not value.lower().startswith(("http://", "https://"))},
}

# Providers that cannot be confined, whatever a user types: localzone edits a zone file on
# this server; OCI reads ~/.oci/config, OCI_CLI_* variables or the instance's own identity
# when its file options are left blank.
ADMIN_ONLY = {"localzone", "oci"}

# Labels, help and timeouts for the providers panel users ask for by name. `fields`
# overrides what is derived from lexicon for one option (label, help, sensitive,
# required, default); it never adds an option lexicon does not have.
FIRST_CLASS = {
    "dnspod": {
        "label": _("DNSPod (legacy dnsapi.cn token)"),
        "help": _("DNSPod's legacy API token, created in the DNSPod console under API keys as "
                  "an ID and a token. For Tencent Cloud API 3.0 keys choose Tencent Cloud."),
        "ttl": 600,
        "fields": {
            "auth_username": {"label": _("Token ID"), "help": _("The numeric ID of the DNSPod API token")},
            "auth_token": {"label": _("Token"), "help": _("The DNSPod API token itself")},
        },
    },
    "aliyun": {
        "label": _("Alibaba Cloud DNS (Aliyun)"),
        "help": _("An AccessKey of a RAM user allowed to manage Alibaba Cloud DNS (AliyunDNSFullAccess)."),
        "ttl": 600,
        "fields": {
            "auth_key_id": {"label": _("AccessKey ID"),
                            "help": _("The AccessKey ID of a RAM user, created in the RAM "
                                      "console under Identities → Users → AccessKey")},
            "auth_secret": {"label": _("AccessKey secret"),
                            "help": _("Shown once, when the AccessKey is created")},
        },
    },
    "qcloud": {
        "label": _("Tencent Cloud (DNSPod API 3.0)"),
        "help": _("A Tencent Cloud API key (SecretId and SecretKey) of a CAM user allowed to manage "
                  "DNSPod records (QcloudDNSPodFullAccess)."),
        "ttl": 600,
        "fields": {
            "secret_id": {"label": _("SecretId"), "required": True,
                          "help": _("The SecretId of a CAM user's API key, created in the CAM "
                                    "console under Users → API keys")},
            "secret_key": {"label": _("SecretKey"), "help": _("The SecretKey of the same API key")},
        },
    },
    "cloudflare": {
        "label": _("Cloudflare"),
        "help": _("An API token with Zone:Read and DNS:Edit permissions. With a Global API key, "
                  "also give the account email. A token scoped to one zone also needs that zone's ID."),
        "fields": {
            "auth_username": {"label": _("Account email"), "help": _("Only with a Global API key")},
            "auth_token": {"label": _("API token or Global API key"),
                           "help": _("An API token (recommended) or the Global API key")},
            "zone_id": {"label": _("Zone ID"), "help": _("Needed when the token is scoped to one zone")},
        },
    },
    "godaddy": {
        "label": _("GoDaddy"),
        "help": _("A production API key and secret from GoDaddy's developer portal."),
        "ttl": 600,
        "propagation_timeout": 600,
        "fields": {
            "auth_key": {"label": _("API key")},
            "auth_secret": {"label": _("API secret")},
        },
    },
    "route53": {
        "label": _("Amazon Route 53"),
        "help": _("An IAM access key allowed route53:ListHostedZonesByName, route53:ListResourceRecordSets "
                  "and route53:ChangeResourceRecordSets on the hosted zone."),
        "fields": {
            "auth_access_key": {"label": _("Access key ID"), "sensitive": False},
            "auth_access_secret": {"label": _("Secret access key")},
            "auth_username": {"label": _("Access key ID (alternative field)"), "sensitive": False},
            "auth_token": {"label": _("Secret access key (alternative field)")},
            "zone_id": {"label": _("Hosted zone ID"), "help": _("Found from the zone name when left blank")},
            "private_zone": {"label": _("Private hosted zone"), "help": _("true or false; blank for either kind")},
        },
    },
    "ovh": {
        "label": _("OVHcloud"),
        "help": _("An application key, application secret and consumer key created on the OVH API "
                  "token page with GET/POST/PUT/DELETE rights on /domain/zone/*."),
        "fields": {
            "auth_entrypoint": {"label": _("API endpoint")},
            "auth_application_key": {"label": _("Application key")},
            "auth_application_secret": {"label": _("Application secret")},
            "auth_consumer_key": {"label": _("Consumer key")},
        },
    },
    "namecheap": {
        "label": _("Namecheap"),
        "help": _("API access must be enabled for the account and this server's public IP address "
                  "whitelisted in Namecheap's API settings."),
        "propagation_timeout": 600,
        "fields": {
            "auth_username": {"label": _("Username")},
            "auth_token": {"label": _("API key")},
            "auth_client_ip": {"label": _("Whitelisted client IP address")},
            "auth_sandbox": {"label": _("Use the sandbox API")},
        },
    },
    "digitalocean": {
        "label": _("DigitalOcean"),
        "help": _("A personal access token with read and write scope."),
        "fields": {"auth_token": {"label": _("Personal access token")}},
    },
    "hetzner": {
        "label": _("Hetzner DNS"),
        "help": _("A Hetzner DNS Console API token, or a Hetzner Cloud API token for zones in Hetzner Cloud."),
        "fields": {"auth_token": {"label": _("API token")}},
    },
    "gandi": {
        "label": _("Gandi LiveDNS"),
        "help": _("A Gandi personal access token (or legacy API key) allowed to manage the domain's DNS records."),
        "fields": {
            "auth_token": {"label": _("Personal access token or API key")},
            "api_protocol": {"label": _("API protocol"), "default": "rest",
                             "help": _("rest (LiveDNS) or rpc (legacy XML-RPC)")},
        },
    },
    "linode": {
        "label": _("Linode (Akamai)"),
        "help": _("A Linode API v4 personal access token with read/write access to Domains."),
        "fields": {"auth_token": {"label": _("Personal access token")}},
    },
    "powerdns": {
        "label": _("PowerDNS (HTTP API)"),
        "help": _("The PowerDNS Authoritative Server's HTTP API: its URL and the api-key from its configuration."),
        "fields": {
            "auth_token": {"label": _("API key")},
            "pdns_server": {"label": _("API URL"), "help": _("For example http://127.0.0.1:8081")},
            "pdns_server_id": {"label": _("Server ID"), "default": "localhost"},
            "pdns_disable_notify": {"label": _("Disable NOTIFY to secondaries"),
                                    "help": _("Any value disables notifying secondaries after a change")},
        },
    },
}

ZONE_FIELD = Field("zone", _("Zone"), required=False,
                   help=_("The DNS zone the records go in, e.g. example.com; found from the public "
                          "suffix list when left blank"))


def _words(name):
    return name.split("_")


def _looks_secret(name):
    if _words(name)[-1] in _NOT_SECRET_SUFFIXES:
        return False
    return any(word in name for word in _SECRET_WORDS)


def _label(name):
    words = _words(name)
    if words[0] == "auth" and len(words) > 1:
        words = words[1:]
    text = " ".join(_ACRONYMS.get(word, word) for word in words)
    return text[0].upper() + text[1:]


def _clean(text):
    return " ".join((text or "").split())


_DOCSTRING_LABELS = (
    re.compile(r"(?:Module provider|Provider module) for (?:a )?(?P<label>.+?)$"),
    re.compile(r"Implements? (?:the |a provider for )?(?P<label>.+?)(?: provider)?(?: \(.*\))?\.?$"),
    re.compile(r"Provide support to Lexicon for (?P<label>.+?) DNS changes"),
    re.compile(r"Lexicon (?P<label>.+?) Provider$"),
    re.compile(r"Compatibility layer for (?P<label>.+)$"),
    re.compile(r"The (?P<label>.+?) provider\b"),
)


def _module_label(code, module):
    """The provider's name from its module docstring ('Module provider for Digital Ocean'), else the code."""
    first_line = (module.__doc__ or "").strip().splitlines()[0].strip() if module.__doc__ else ""
    for pattern in _DOCSTRING_LABELS:
        match = pattern.match(first_line)
        if match:
            return match.group("label")
    return code.capitalize()


class LexiconProvider(DnsProvider):
    """A DNS provider driven by dns-lexicon. Subclasses are generated per lexicon provider."""

    lexicon_name = ""
    help = ""
    available = True
    # name -> (is_flag, type or None, choices or None), as lexicon's parser declares it
    lexicon_options: ClassVar[dict] = {}

    def __init__(self, values):
        super().__init__(values)
        self.options = {}
        for name, (is_flag, kind, choices) in self.lexicon_options.items():
            raw = self.values.get(name, "")
            if not raw:
                continue
            label = self._field_label(name)
            if is_flag:
                if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    raise DnsProviderError(_("%(field)s must be true or false") % {"field": label})
                if raw.lower() in ("1", "true", "yes", "on"):
                    self.options[name] = True
                continue
            if choices and raw not in choices:
                raise DnsProviderError(_("%(field)s must be one of %(choices)s")
                                       % {"field": label, "choices": ", ".join(map(str, choices))})
            if kind is not None:
                try:
                    raw = kind(raw)
                except (TypeError, ValueError):
                    raise DnsProviderError(_("%(field)s is not a valid value") % {"field": label}) from None
            self.options[name] = raw

    @classmethod
    def _field_label(cls, name):
        return next(str(f.label) for f in cls.fields if f.name == name)

    def _zone_for(self, name):
        zone = self.values["zone"].rstrip(".").lower()
        if zone:
            if name != zone and not name.endswith("." + zone):
                raise DnsProviderError(_("%(name)s is not in the zone %(zone)s") % {"name": name, "zone": zone})
            return zone
        parts = OFFLINE_SUFFIXES(name)
        if not (parts.domain and parts.suffix):
            raise DnsProviderError(_("Cannot tell which zone %(name)s is in; fill in the Zone field")
                                   % {"name": name})
        return f"{parts.domain}.{parts.suffix}"

    def _scrub(self, text):
        """The text with every secret value, also URL-encoded, replaced by ***."""
        for field in self.fields:
            secret = self.values.get(field.name, "")
            if field.sensitive and secret:
                for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
                    text = text.replace(form, "***")
        return text

    def _failure(self, action, exc):
        detail = _describe(exc)
        return DnsProviderError(
            _("%(provider)s: could not %(action)s: %(error)s")
            % {"provider": self.label, "action": action, "error": self._scrub(detail)}
        )

    @contextmanager
    def _lexicon(self, zone, action):
        """An authenticated lexicon provider for `zone`; its errors become DnsProviderError."""
        if not self.available:
            raise DnsProviderError(_("%(provider)s needs extra packages: pip install dns-lexicon[%(code)s]")
                                   % {"provider": self.label, "code": self.lexicon_name})
        config = ConfigResolver().with_dict({
            "provider_name": self.lexicon_name,
            "domain": zone,
            "ttl": self.ttl,
            self.lexicon_name: dict(self.options),
        })
        module = load_provider_module(self.lexicon_name)
        try:
            provider = module.Provider(config)
            provider.authenticate()
        except DnsProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - lexicon providers raise anything: HTTP, SDK, plain errors
            raise self._failure(_("sign in for zone %(zone)s") % {"zone": zone}, exc) from None
        try:
            yield provider
        except DnsProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - as above
            raise self._failure(action, exc) from None
        finally:
            try:
                provider.cleanup()
            except Exception:  # noqa: BLE001 - closing a session must not hide the real outcome
                logger.warning("%s: lexicon cleanup failed", self.code, exc_info=False)

    def present(self, name, value):
        name = name.rstrip(".").lower()
        zone = self._zone_for(name)
        action = _("create the TXT record %(name)s") % {"name": name}
        with self._lexicon(zone, action) as provider:
            # Some providers answer False when the value was already there (a retried
            # present): only a value that is still missing is a failure.
            if provider.create_record("TXT", name, value) is False and not any(
                    record.get("content") == value for record in provider.list_records("TXT", name, value)):
                raise DnsProviderError(_("%(provider)s: could not create the TXT record %(name)s")
                                       % {"provider": self.label, "name": name})
        return {"domain": zone, "name": name, "content": value}

    def cleanup(self, name, value, state):
        name = (state or {}).get("name") or name.rstrip(".").lower()
        zone = (state or {}).get("domain") or self._zone_for(name)
        action = _("delete the TXT record %(name)s") % {"name": name}
        with self._lexicon(zone, action) as provider:
            # name and content together: an apex and a wildcard share the name, not the value
            provider.delete_record(None, "TXT", name, value)

    def check(self):
        zone = self.values["zone"].rstrip(".").lower()
        if not zone:
            raise DnsProviderError(_("Give the zone to test these credentials against."))
        with self._lexicon(zone, _("list the TXT records of %(zone)s") % {"zone": zone}) as provider:
            provider.list_records("TXT")


def _describe(exc):
    """What went wrong, without the remote's answer: an HTTP error is its status, an answer that
    is not JSON says so, anything else its first line, cut short. The server is the user's to
    choose; a page must not read back what it sent (request forgery with read-back)."""
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None:
        return f"HTTP {response.status_code}"
    if isinstance(exc, requests.JSONDecodeError):
        return str(_("the server's answer is not the provider's JSON API"))
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    return detail if len(detail) <= DETAIL_LENGTH else detail[:DETAIL_LENGTH] + "…"


def _derived_field(code, action, override):
    name = action.dest
    server_path = SERVER_PATHS.get(code, {}).get(name)
    is_flag = action.nargs == 0
    help_text = _clean(action.help)
    default = action.default
    if is_flag:
        help_text = f"{help_text} (true or false)".strip()
        default = "true" if default else "false"
    elif action.choices:
        help_text = f"{help_text} ({', '.join(map(str, action.choices))})".strip()
        if default is None:  # lexicon's help and code list the usual choice first
            default = next(iter(action.choices))
    has_default = default is not None
    sensitive = not is_flag and _looks_secret(name)
    required = (
        not is_flag
        and not has_default
        and not _OPTIONAL_HINTS.search(help_text)
        and name not in ALTERNATIVE_CREDENTIALS.get(code, ())
        and (name.startswith("auth_") or sensitive or bool(_LOCATION.search(name)))
    )
    field = {
        "name": name,
        "label": _label(name),
        "sensitive": sensitive,
        "required": required,
        "help": help_text,
        "default": str(default) if has_default else "",
        "server_path": server_path,
    }
    field.update(override)
    return Field(**field)


def _provider_class(code, module, available):
    parser = argparse.ArgumentParser(add_help=False)
    module.Provider.configure_parser(parser)
    presentation = FIRST_CLASS.get(code, {})
    overrides = presentation.get("fields", {})
    # argparse has no public way to list a parser's options
    actions = [a for a in parser._actions if a.option_strings]
    fields = tuple(_derived_field(code, a, overrides.get(a.dest, {})) for a in actions) + (ZONE_FIELD,)
    options = {a.dest: (a.nargs == 0, a.type if callable(a.type) else None, a.choices) for a in actions}
    attributes = {
        "__module__": __name__,
        "__doc__": f"lexicon's {code} provider.",
        "code": code,
        "lexicon_name": code,
        "label": presentation.get("label") or _module_label(code, module),
        "help": presentation.get("help") or _clean(parser.description),
        "fields": fields,
        "lexicon_options": options,
        "available": available,
        "admin_only": code in ADMIN_ONLY,
        "ttl": presentation.get("ttl", DnsProvider.ttl),
        "propagation_timeout": presentation.get("propagation_timeout", DEFAULT_PROPAGATION_TIMEOUT),
    }
    class_name = "Lexicon" + re.sub(r"\W", "", code.title()) + "Provider"
    return type(class_name, (LexiconProvider,), attributes)


def provider_classes() -> dict[str, type[DnsProvider]]:
    """code -> DnsProvider class, for every provider lexicon ships (but `EXCLUDED`)."""
    classes = {}
    for code, available in find_providers().items():
        if code in EXCLUDED:
            continue
        classes[code] = _provider_class(code, load_provider_module(code), available)
    return classes
