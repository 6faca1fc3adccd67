"""Registry of DNS providers: code -> class. The database stores the code.

Native providers are listed here; every provider of dns-lexicon is added by
certs.dns.lexicon_providers, with fields derived from lexicon's own options.
"""

from contextlib import contextmanager
from functools import lru_cache
from importlib import import_module

from certs.dns.base import DnsProvider, DnsProviderError
from panel.toolkit import outbound

NATIVE = {
    "huaweicloud": "certs.dns.huaweicloud.HuaweiCloudProvider",
    "rfc2136": "certs.dns.rfc2136.Rfc2136Provider",
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


def provider_class(code) -> type[DnsProvider]:
    try:
        return all_providers()[code]
    except KeyError:
        raise DnsProviderError(f"unknown DNS provider {code!r}") from None


def provider_for(credential) -> DnsProvider:
    """The provider, ready to use, for a DnsCredential row."""
    return provider_class(credential.provider)(credential.values())


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
    """What the API and UI offer: code, label and declared fields of every provider."""
    return [
        {
            "code": code,
            "label": str(cls.label),
            "fields": [
                {"name": f.name, "label": str(f.label), "sensitive": f.sensitive, "required": f.required,
                 "help": str(f.help), "default": f.default}
                for f in cls.fields
            ],
        }
        for code, cls in all_providers().items()
    ]
