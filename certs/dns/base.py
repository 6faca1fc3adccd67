"""The contract every DNS provider implements.

A provider declares its credential `fields` (which are `sensitive`), a TTL and a
propagation timeout. `present(name, value)` publishes one TXT value and returns
a JSON-able state; `cleanup(name, value, state)` removes exactly that value and
nothing else (an apex and a wildcard share one name with two values). `check()`
proves the credentials work without changing anything visible. Errors are
`DnsProviderError` with a message a user can act on, never containing a secret.

A provider that works on this server's own files or credentials is `admin_only`; a field
whose value may name a file or a UNIX socket on this server says which values do in
`server_path`. Such values are opened with the worker's rights, so only an administrator
may give them (certs.dns_credentials enforces it).
"""

from collections.abc import Callable
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
    # value -> True when it names a file or a UNIX socket on this server; None: no value does
    server_path: Callable[[str], bool] | None = None


class DnsProvider:
    code = ""
    label = ""
    fields: tuple[Field, ...] = ()
    ttl = 60
    admin_only = False  # the provider reads or writes this server's own files or credentials
    propagation_timeout = 300  # seconds to wait for every authoritative server to show a record

    def __init__(self, values: dict):
        self.values = {f.name: str(values.get(f.name) or f.default).strip() for f in self.fields}
        missing = [f.label for f in self.fields if f.required and not self.values[f.name]]
        if missing:
            raise DnsProviderError(_("Missing: %(fields)s") % {"fields": ", ".join(str(m) for m in missing)})

    @classmethod
    def sensitive_fields(cls):
        return [f.name for f in cls.fields if f.sensitive]

    @classmethod
    def server_path_fields(cls, values: dict) -> list[Field]:
        """The fields whose value in `values` names a file or a UNIX socket on this server."""
        return [f for f in cls.fields
                if f.server_path is not None and str(values.get(f.name) or "").strip()
                and f.server_path(str(values[f.name]).strip())]

    def present(self, name: str, value: str) -> dict:
        raise NotImplementedError

    def cleanup(self, name: str, value: str, state: dict) -> None:
        raise NotImplementedError

    def check(self) -> None:
        raise NotImplementedError
