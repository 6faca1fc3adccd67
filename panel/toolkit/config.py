"""Reading and validating settings from the environment.

Every value is checked once, at start-up; all problems are reported together so a
misconfigured panel fails with one message that says what to fix, never later
with a traceback deep inside a task.
"""

import ipaddress
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from panel.toolkit.files import write_new


# Address families a listener may use, by the value of a *_FAMILIES setting.
LISTEN_FAMILIES = {"both": (4, 6), "ipv4": (4,), "ipv6": (6,)}
LOOPBACK = {4: "127.0.0.1", 6: "::1"}


def split_host_port(item):
    """(host, port or "") of `address`, `address:port` or `[IPv6 address]:port`; a bare IPv6
    address (several colons) has no port."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        return host, rest.removeprefix(":")
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, port
    return item, ""


def ipv6_available():
    """Can this host listen on IPv6 at all (a kernel with IPv6, and ::1 on the loopback)?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def read_or_create_secret_file(path, generate):
    """The content of a 0600 file, created with generate() if missing.

    Several processes (web, worker, beat) may start at once: the file appears
    complete or not at all.
    """
    path = Path(path)
    if not path.exists():
        write_new(path, generate() + "\n", mode=0o600)  # a loser of the race reads the winner's file
    return path.read_text()


class Env:
    """Collects typed values from os.environ and the problems found in them."""

    def __init__(self, environ=None):
        self.environ = os.environ if environ is None else environ
        self.problems = []

    def _raw(self, name):
        value = self.environ.get(name, "").strip()
        return value or None

    def str(self, name, default=None):
        return self._raw(name) or default

    def bool(self, name, default=False):
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}={value!r}: expected true or false")
        return default

    def choice(self, name, default, choices):
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            self.problems.append(f"{name}={value!r}: expected one of {', '.join(choices)}")
            return default
        return value.lower()

    def listen_addresses(self, name, families, families_name, default=""):
        """Comma-separated IP addresses to listen on ([brackets] around an IPv6 one allowed), as
        one normalised comma-separated string. Each must be of a family the setting
        `families_name` allows: `families`, a value of LISTEN_FAMILIES."""
        value = self._raw(name)
        if value is None:
            return default
        addresses = []
        for item in value.split(","):
            item = item.strip().removeprefix("[").removesuffix("]")
            if not item:
                continue
            try:
                address = ipaddress.ip_address(item)
            except ValueError:
                self.problems.append(f"{name}: {item!r} is not an IP address (leave it empty for every address)")
                continue
            if address.version not in LISTEN_FAMILIES[families]:
                self.problems.append(f"{name}: {item} is an IPv{address.version} address, but "
                                     f"{families_name}={families} leaves IPv{address.version} out")
                continue
            addresses.append(str(address))
        return ",".join(addresses)

    def int(self, name, default, minimum=None, maximum=None):
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problems.append(f"{name}={value!r}: expected a whole number")
            return default
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.problems.append(f"{name}={number}: must be between {minimum} and {maximum}")
            return default
        return number

    def float(self, name, default, minimum=0.0):
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.problems.append(f"{name}={value!r}: expected a number")
            return default
        if number < minimum:
            self.problems.append(f"{name}={number}: must be at least {minimum}")
            return default
        return number

    def port(self, name, default):
        return self.int(name, default, minimum=1, maximum=65535)

    def directory(self, name, default, create=True):
        path = Path(self._raw(name) or default).expanduser().resolve()
        if create:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.problems.append(f"{name}={path}: cannot create the directory ({exc.strerror})")
                return path
        if not path.is_dir():
            self.problems.append(f"{name}={path}: not a directory")
        elif create and not os.access(path, os.W_OK):
            self.problems.append(f"{name}={path}: the panel cannot write here")
        return path

    def existing_file(self, name, default=None):
        value = self._raw(name) or default
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            self.problems.append(f"{name}={path}: no such file")
            return None
        return path.resolve()

    def executable(self, name, default):
        value = self._raw(name) or default
        found = shutil.which(value)
        if found is None:
            self.problems.append(
                f"{name}={value}: not found or not executable "
                "(install nginx, or point this at the nginx binary)"
            )
            return value
        return found

    def url(self, name, default, schemes):
        value = self._raw(name) or default
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            self.problems.append(f"{name}={value!r}: must start with one of {', '.join(s + '://' for s in schemes)}")
        return value

    def ip_list(self, name):
        value = self._raw(name)
        if value is None:
            return []
        addresses = []
        for item in value.split(","):
            item = item.strip()
            host, port = split_host_port(item)
            try:
                ipaddress.ip_address(host)
                if port and not (port.isdigit() and 0 < int(port) < 65536):
                    raise ValueError
            except ValueError:
                self.problems.append(f"{name}: {item!r} is not an IP address (optionally with :port; "
                                     f"[IPv6 address]:port)")
                continue
            addresses.append(item)
        return addresses

    def network_list(self, name):
        """Comma-separated addresses or networks (10.0.0.0/8, ::1) as ip_network objects."""
        networks = []
        for item in (self._raw(name) or "").split(","):
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                self.problems.append(f"{name}: {item.strip()!r} is not an IP address or network")
        return networks

    def path_list(self, name, default):
        value = self._raw(name)
        items = value.split(",") if value else default
        return [Path(str(item).strip()).expanduser().resolve() for item in items if str(item).strip()]

    def named_urls(self, name, schemes):
        """Comma-separated `code=url` pairs as {code: url}; a code is lower-case letters, digits and -."""
        found = {}
        for item in (self._raw(name) or "").split(","):
            if not item.strip():
                continue
            code, equals, url = (part.strip() for part in item.partition("="))
            scheme = url.split("://", 1)[0] if "://" in url else ""
            if not equals or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", code) or scheme not in schemes:
                self.problems.append(f"{name}: {item.strip()!r} is not code=url (a code of a-z, 0-9 and -, "
                                     f"a URL starting with {' or '.join(s + '://' for s in schemes)})")
                continue
            found[code] = url
        return found

    def secret_from_file(self, name, path):
        """A secret from the environment, or from a 0600 file created on first use."""
        value = self._raw(name)
        if value:
            return value
        try:
            return read_or_create_secret_file(path, lambda: secrets.token_urlsafe(48)).strip()
        except OSError as exc:
            self.problems.append(f"{name}: not set and {path} cannot be created or read ({exc.strerror})")
            return ""

    def check(self):
        if self.problems:
            raise ImproperlyConfigured(
                "CertPanel is not configured correctly:\n  - " + "\n  - ".join(self.problems)
            )
