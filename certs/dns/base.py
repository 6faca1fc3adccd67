"""The contract every DNS provider implements.

A provider declares its credential `fields` (which are `sensitive`), a TTL and a
propagation timeout. `present(name, value)` publishes one TXT value and returns
a JSON-able state; `cleanup(name, value, state)` removes exactly that value and
nothing else (an apex and a wildcard share one name with two values). `check()`
proves the credentials work without changing anything visible. Errors are
`DnsProviderError` with a message a user can act on, never containing a secret.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


class DnsProviderError(Exception):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    sensitive: bool = False
    required: bool = True
    help: str = ""
    default: str = ""


class DnsProvider:
    code = ""
    label = ""
    fields: tuple[Field, ...] = ()
    ttl = 60
    propagation_timeout = 300  # seconds to wait for every authoritative server to show a record

    def __init__(self, values: dict):
        self.values = {f.name: str(values.get(f.name) or f.default).strip() for f in self.fields}
        missing = [f.label for f in self.fields if f.required and not self.values[f.name]]
        if missing:
            raise DnsProviderError(_("Missing: %(fields)s") % {"fields": ", ".join(str(m) for m in missing)})

    @classmethod
    def sensitive_fields(cls):
        return [f.name for f in cls.fields if f.sensitive]

    def present(self, name: str, value: str) -> dict:
        raise NotImplementedError

    def cleanup(self, name: str, value: str, state: dict) -> None:
        raise NotImplementedError

    def check(self) -> None:
        raise NotImplementedError
