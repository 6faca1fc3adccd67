"""What an importer found in another ACME client's files, before anything is stored.

A reader (certs.importers.acmesh, certs.importers.certbot) turns a directory into a
`Found`: plain values, no database. certs.importers.store turns a Found into rows, one
certificate per transaction, or only describes what it would do (a dry run). Keeping the
two apart lets a dry run, the management commands and the admin upload page share one
reader per client and one writer for both clients.

Messages say the file and line they are about, and are translated when they are made: a
reader runs inside the page's request with the user's language active (the commands run in
English). The writer and the pages show them as they are: they quote file contents as written.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


@dataclass
class Problem:
    """Something that stops an item from being imported, or a setting that cannot be
    carried over. `path` is the file it is about; `line` its 1-based line when known."""

    path: str
    message: str
    line: int | None = None

    def __str__(self):
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass
class FoundAccount:
    """An ACME account: the same key goes on being used, no new registration."""

    directory_url: str
    key_pem: str  # the account's private key, PEM (the readers convert a JWK)
    account_url: str = ""  # the account's URL (kid) at the CA, when the files say it
    email: str = ""
    source: str = ""  # the file the key came from, for the report


@dataclass
class FoundInstall:
    """Where the other client copied the files after each renewal, and what it ran then.
    Paths are as the other client wrote them; reload_command is the shell text it ran
    (acme.sh's Le_ReloadCmd decoded, certbot's deploy/renew hook with the text of its hook
    scripts, never their paths), "" when none."""

    key_path: str = ""
    cert_path: str = ""
    chain_path: str = ""
    fullchain_path: str = ""
    reload_command: str = ""
    reload_name: str = ""  # what the command is called, when its text is too long to read as a name

    def paths(self) -> dict:
        return {name: value for name, value in (("key_path", self.key_path), ("cert_path", self.cert_path),
                                                ("chain_path", self.chain_path),
                                                ("fullchain_path", self.fullchain_path)) if value}


@dataclass
class FoundCertificate:
    """One certificate with its current files and how to renew it.

    `problems` non-empty: it cannot be imported (the report says why, nothing is stored
    for it). `notes`: settings that do not carry over but do not stop the import (a
    pre-hook, acme.sh's own HTTP port), shown in the report."""

    name: str  # as the other client calls it: acme.sh's folder, certbot's lineage name
    source: str  # its conf file
    domains: list[str] = field(default_factory=list)
    key_type: str = ""  # a certs.models.KeyType value
    cert_pem: str = ""  # the leaf
    chain_pem: str = ""  # the intermediates, without the leaf
    key_pem: str = ""
    account: FoundAccount | None = None
    challenge: str = ""  # a certs.models.ChallengeType value
    webroot: str = ""  # http-01-webroot
    server_config: str = ""  # http-01-nginx / http-01-apache
    dns_provider: str = ""  # a certs.dns.registry code, with DNS-01
    dns_credentials: dict = field(default_factory=dict)  # that provider's field names -> values
    dns_source: str = ""  # e.g. "acme.sh dns_cf", names the credential in the panel
    challenge_alias: str = ""
    next_renewal_at: datetime.datetime | None = None  # None: the panel's own rule
    install: FoundInstall | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


@dataclass
class Found:
    """Everything a reader found. `problems`: files that could not be read at all and are
    not one certificate's (an unreadable account, a conf that is not a conf)."""

    client: str  # "acme.sh" or "certbot"
    root: str
    accounts: list[FoundAccount] = field(default_factory=list)
    certificates: list[FoundCertificate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
