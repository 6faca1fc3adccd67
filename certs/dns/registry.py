"""Registry of DNS providers: code -> class. The database stores the code.

Native providers are listed here; every provider of dns-lexicon is added by
certs.dns.lexicon_providers, with fields derived from lexicon's own options.
"""

from contextlib import contextmanager
from functools import lru_cache
from importlib import import_module

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from certs.dns.base import DnsProvider, DnsProviderError
from panel.toolkit.access import is_admin
from panel.toolkit import outbound

NATIVE = {
    "huaweicloud": "certs.dns.huaweicloud.HuaweiCloudProvider",
    "rfc2136": "certs.dns.rfc2136.Rfc2136Provider",
}

# The providers most used where the reader's language is spoken, first in the list (the first
# is the form's default); the rest follow by label. Chinese readers: China's big clouds and
# DNSPod's legacy API (Tencent Cloud's "qcloud" is DNSPod API 3.0), Cloudflare.
FEATURED = {
    "zh": ("aliyun", "qcloud", "huaweicloud", "cloudflare", "dnspod"),
    "en": ("cloudflare", "route53", "googleclouddns", "azure", "digitalocean", "godaddy"),
}


def _load(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


@lru_cache(maxsize=None)
def all_providers() -> dict[str, type[DnsProvider]]:
    providers = {}
    try:
        # On first use only: lexicon reads its whole provider list when imported.
        from certs.dns import lexicon_providers
    except ImportError:
        lexicon_providers = None
    if lexicon_providers is not None:
        providers.update(lexicon_providers.provider_classes())
    providers.update({code: _load(path) for code, path in NATIVE.items()})
    return dict(sorted(providers.items()))


def featured_codes() -> tuple[str, ...]:
    """FEATURED for the active language (zh-hans is "zh"); English's for any other."""
    language = (get_language() or "en").split("-")[0]
    codes = FEATURED.get(language, FEATURED["en"])
    return tuple(code for code in codes if code in all_providers())


def provider_class(code) -> type[DnsProvider]:
    try:
        return all_providers()[code]
    except KeyError:
        raise DnsProviderError(f"unknown DNS provider {code!r}") from None


def admin_only_refusal(provider_class, values, user):
    """Why `user` may not use these values of this provider (a message naming the provider or
    the field), or None. Files and UNIX sockets of this server are for administrators only."""
    if is_admin(user):
        return None
    if provider_class.admin_only:
        return _("%(provider)s is for administrators only: it works on this server's own files or credentials. "
                 "Choose another provider, or ask an administrator to set it up.") % {"provider": provider_class.label}
    fields = provider_class.server_path_fields(values)
    if fields:
        return _("%(fields)s: a file or UNIX socket on this server is for administrators only. Give the value "
                 "itself instead (an http:// or https:// URL, or base64:: content).") % {
            "fields": ", ".join(str(f.label) for f in fields)}
    return None


def provider_for(credential) -> DnsProvider:
    """The provider, ready to use, for a DnsCredential row. Checked again here, not only when
    saved: rows saved before the rule, or by an owner who is no longer an administrator."""
    cls = provider_class(credential.provider)
    values = credential.values()
    refusal = admin_only_refusal(cls, values, credential.owner)
    if refusal:
        raise DnsProviderError(refusal)
    return cls(values)


def _field_help(field):
    if field.server_path is None:
        return str(field.help)
    note = _("A file or socket on this server: administrators only.")
    return f"{field.help} {note}".strip()


@contextmanager
def outbound_for(credential):
    """Around every call of a provider built from `credential`: its connections follow the
    outbound policy of the credential's owner (panel.toolkit.outbound) and time out; a refusal
    or a timeout becomes a DnsProviderError saying which address and what to do."""
    try:
        with outbound.guarded_for(credential.owner):
            yield
    except (outbound.OutboundRefused, outbound.OutboundTimeout) as exc:
        raise DnsProviderError(str(exc)) from None


def catalog():
    """What the API and UI offer, by code (the form orders it by language, featured_codes):
    code, label and declared fields of every provider, and what is
    for administrators only (`admin_only`: the whole provider; a field's `server_path`: its
    values that name a file or socket on this server)."""
    return [
        {
            "code": code,
            "label": str(cls.label),
            "admin_only": cls.admin_only,
            "fields": [
                {"name": f.name, "label": str(f.label), "sensitive": f.sensitive, "required": f.required,
                 "help": _field_help(f), "default": f.default, "server_path": f.server_path is not None}
                for f in cls.fields
            ],
        }
        for code, cls in all_providers().items()
    ]
