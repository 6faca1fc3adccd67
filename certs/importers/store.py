"""Storing what a reader found (certs.importers.found): the one writer for every importer.

Each certificate is stored in its own transaction with everything it needs (its ACME
account, DNS credential, reload preset, install target, the certificate and its current
version) or not at all; a problem of one certificate never stops the others. A dry run
takes the same path inside a transaction that is rolled back at the end, so its preview
says exactly what the real run would do, and nothing queued on commit ever runs.

Running twice creates nothing new: a certificate whose serial and issuer the owner
already has is "already imported" and nothing of it is touched; accounts, credentials
and presets are found again by what they are (CA and key, provider and values, command).

Every rule a user's own request obeys holds for an import too (certs.certificates
.clean_request, the upload checks, quotas, install paths, CA presets for non-admins).
The report names things (names, providers, field names, paths), never a secret.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from certs import cas, certificates, dns_credentials, upload
from certs.dns import registry
from certs.importers.found import Found, FoundAccount, FoundCertificate
from certs.models import (AcmeAccount, Certificate, CertificateVersion, ChallengeType, DnsCredential, InstallTarget,
                          KeyType, ReloadPreset)
from certs.renewal import policy as renewal_policy
from panel.deployment import dispatch, install_targets
from panel.models import Site
from panel.security import homes, quotas
from panel.toolkit import access, validation

CREATED, WOULD_CREATE, ALREADY, NOT_IMPORTED = "created", "would create", "already imported", "not imported"
OUTCOME_LABELS = {CREATED: _lazy("created"), WOULD_CREATE: _lazy("would create"), ALREADY: _lazy("already imported"),
                  NOT_IMPORTED: _lazy("not imported")}
ACCOUNT, DNS_CREDENTIAL, RELOAD_PRESET, INSTALL_TARGET, CERTIFICATE = (
    "account", "DNS credential", "reload preset", "install target", "certificate")
KINDS = (CERTIFICATE, ACCOUNT, DNS_CREDENTIAL, RELOAD_PRESET, INSTALL_TARGET)
ITEM_LABELS = {CERTIFICATE: _lazy("Certificate"), ACCOUNT: _lazy("ACME account"),
               DNS_CREDENTIAL: _lazy("DNS credentials"), RELOAD_PRESET: _lazy("Reload preset"),
               INSTALL_TARGET: _lazy("Install target")}
KIND_LABELS = {CERTIFICATE: _lazy("Certificates"), ACCOUNT: _lazy("ACME accounts"),
               DNS_CREDENTIAL: _lazy("DNS credentials"), RELOAD_PRESET: _lazy("Reload presets"),
               INSTALL_TARGET: _lazy("Install targets")}
# Which setting widens the directories a path field may lie in, and whether to add the path
# itself (a document root) or its folder (a file's).
_ROOT_SETTINGS = {"webroot": ("WEBROOT_ROOTS", "CERTPANEL_WEBROOT_ROOTS", False),
                  "server_config": ("EXTERNAL_CONFIG_ROOTS", "CERTPANEL_EXTERNAL_CONFIG_ROOTS", True),
                  **{name: ("INSTALL_ROOTS", "CERTPANEL_INSTALL_ROOTS", True) for name in InstallTarget.PATH_FIELDS}}
_SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
_SHELL = "/bin/sh"


@dataclass
class ReportItem:
    """One thing the import created, would create, found already there or could not import.
    `messages`: the problems (why not) and notes (what did not carry over), with path:line,
    in the language that was active when they were made."""

    kind: str
    label: str
    outcome: str = ""
    messages: list[str] = field(default_factory=list)

    @property
    def outcome_label(self):
        return OUTCOME_LABELS[self.outcome]

    @property
    def kind_label(self):
        return ITEM_LABELS[self.kind]


@dataclass
class ImportReport:
    client: str
    root: str
    dry_run: bool
    items: list[ReportItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files not read at all, from the reader
    left_out: list[str] = field(default_factory=list)  # an uploaded archive's links that led outside it
    _listed: set = field(default_factory=set, repr=False)  # (kind, pk) already in items

    def counts(self) -> dict:
        """{kind: Counter(outcome -> number)}, every kind present."""
        counts = {kind: Counter() for kind in KINDS}
        for item in self.items:
            counts[item.kind][item.outcome] += 1
        return counts

    @property
    def incomplete(self) -> bool:
        """Something was not imported: a certificate, an account or a whole file."""
        return bool(self.problems) or any(item.outcome == NOT_IMPORTED for item in self.items)

    def without_prefix(self, prefix, archive_name):
        """Paths relative to where the files were unpacked (an uploaded archive)."""
        inside = f"{self.root}/".removeprefix(prefix).rstrip("/")
        self.root = f"{archive_name}: {inside}" if inside else archive_name
        for item in self.items:
            item.label = item.label.replace(prefix, "")
            item.messages = [message.replace(prefix, "") for message in item.messages]
        self.problems = [problem.replace(prefix, "") for problem in self.problems]

    def summary(self) -> list[str]:
        """One line per kind, in the active language (the page shows them)."""
        lines = []
        for kind, counter in self.counts().items():
            if counter:
                # Translators: one count of the import summary, e.g. "2 would create"; the outcome is
                # "created", "would create", "already imported" or "not imported". Joined by ", ".
                parts = ", ".join(_("%(count)d %(outcome)s") % {"count": counter[outcome], "outcome": label}
                                  for outcome, label in OUTCOME_LABELS.items() if counter[outcome])
                # Translators: a line of the import summary, e.g. "Certificates: 2 would create, 1 not imported".
                lines.append(_("%(kind)s: %(counts)s") % {"kind": KIND_LABELS[kind], "counts": parts})
        if self.problems:
            lines.append(_("Files not read: %(count)d") % {"count": len(self.problems)})
        return lines

    def as_text(self) -> str:
        """The report for a terminal (the commands run in English): every item with its
        messages, then the counts."""
        lines = [f"Import from the {self.client} files in {self.root}"
                 + (" (dry run: nothing was stored)" if self.dry_run else "")]
        for item in self.items:
            lines.append(f"{item.outcome}: {item.kind} {item.label}")
            lines += [f"    {message}" for message in item.messages]
        for problem in self.problems:
            lines.append(f"not read: {problem}")
        lines.append("Summary:")
        lines += [f"    {line}" for line in self.summary()] or ["    nothing found"]
        return "\n".join(lines) + "\n"


class _NotImported(Exception):
    """Rolls back one certificate (or account): `messages` say why."""

    def __init__(self, messages):
        super().__init__()
        self.messages = messages


class _DryRunDone(Exception):
    pass


def import_found(found: Found, owner, dry_run=False) -> ImportReport:
    """Store what `found` holds for `owner` (see the module docstring); never raises for
    a problem of the files, which the report carries instead."""
    report = ImportReport(client=found.client, root=found.root, dry_run=dry_run,
                          problems=[str(problem) for problem in found.problems])
    with _rolled_back_if(dry_run):
        known = _Known(owner)
        for found_certificate in found.certificates:
            _import_certificate(found_certificate, owner, report, known)
        used = [c.account for c in found.certificates if c.account is not None]
        for found_account in found.accounts:
            if not any(_same_account(found_account, other) for other in used):
                _import_account_alone(found_account, owner, report, known)
    return report


@contextmanager
def _rolled_back_if(dry_run):
    """A real run: each certificate commits on its own. A dry run: all of it inside one
    transaction that is rolled back, so on_commit work (deploys, installs) never fires."""
    if not dry_run:
        yield
        return
    try:
        with transaction.atomic():
            yield
            raise _DryRunDone
    except _DryRunDone:
        pass


def _same_account(one: FoundAccount, other: FoundAccount):
    return one is other or (one.directory_url == other.directory_url and one.key_pem == other.key_pem)


class _Known:
    """What every certificate of one import looks up again, read or worked out once: the
    (serial, issuer) of each version the owner has, kept up to date as certificates are
    stored, and the public key of each account key PEM (parsing a key costs more than the
    query that finds the account). Per import, never shared: it holds key material."""

    def __init__(self, owner):
        self.versions = set(CertificateVersion.objects.filter(certificate__owner=owner)
                            .values_list("serial", "issuer"))
        self._private_keys, self._public_keys = {}, {}

    def private_key(self, pem):
        """The key object of a found account key, None when it cannot be read."""
        if pem not in self._private_keys:
            try:
                self._private_keys[pem] = serialization.load_pem_private_key(pem.encode(), password=None)
            except (ValueError, TypeError):
                self._private_keys[pem] = None
        return self._private_keys[pem]

    def public_key(self, pem):
        """The SubjectPublicKeyInfo of a stored account key, None when it cannot be read."""
        if pem not in self._public_keys:
            self._public_keys[pem] = _public_key(pem)
        return self._public_keys[pem]


class _Run:
    """What one certificate's transaction made, reported only if it commits."""

    def __init__(self, owner, report, known):
        self.owner, self.report, self.known, self.items = owner, report, known, []

    def made(self, kind, obj, label, created, messages=()):
        key = (kind, obj.pk)
        if key in self.report._listed or any(listed == key for listed, item in self.items):
            return  # a second certificate using the same account: listed once
        outcome = (WOULD_CREATE if self.report.dry_run else CREATED) if created else ALREADY
        self.items.append((key, ReportItem(kind, label, outcome, list(messages))))

    def commit(self):
        for key, item in self.items:
            self.report._listed.add(key)
            self.report.items.append(item)


def _import_certificate(found: FoundCertificate, owner, report, known: _Known):
    item = ReportItem(CERTIFICATE, _certificate_label(found))
    notes = [_note(note) for note in found.notes]
    checked = _checked_files(found, owner)
    if isinstance(checked, upload.CheckedUpload) and _version_key(checked.leaf) in known.versions:
        item.outcome, item.messages = ALREADY, notes
        report.items.append(item)
        return
    run = _Run(owner, report, known)
    try:
        if found.problems:
            raise _NotImported([str(problem) for problem in found.problems])
        if not isinstance(checked, upload.CheckedUpload):
            raise _NotImported(checked)
        with transaction.atomic():
            if _stored_meanwhile(owner, checked.leaf):
                raise _AlreadyStored
            _store_certificate(found, checked, run)
    except _AlreadyStored:
        item.outcome, item.messages = ALREADY, notes
    except _NotImported as exc:
        item.outcome, item.messages = NOT_IMPORTED, exc.messages + notes
    except (DatabaseError, OSError) as exc:  # e.g. a concurrent import took a path: the others go on
        item.outcome = NOT_IMPORTED
        item.messages = [_("%(path)s: could not be stored (%(error)s); try again")
                         % {"path": found.source, "error": f"{type(exc).__name__}: {exc}"}] + notes
    else:
        item.outcome, item.messages = WOULD_CREATE if report.dry_run else CREATED, notes
        known.versions.add(_version_key(checked.leaf))  # a second copy of it in the files: already imported
    report.items.append(item)  # the certificate first, then what was made for it
    if item.outcome != NOT_IMPORTED:
        run.commit()


def _import_account_alone(found: FoundAccount, owner, report, known: _Known):
    run = _Run(owner, report, known)
    try:
        with transaction.atomic():
            _account(found, owner, run, found.source)
    except _NotImported as exc:
        report.items.append(ReportItem(ACCOUNT, _account_label(found), NOT_IMPORTED, exc.messages))
    else:
        run.commit()


class _AlreadyStored(Exception):
    pass


def _stored_meanwhile(owner, leaf):
    """Whether another import (of the same files, started beside this one) stored this certificate
    after `_Known` was read. The owner's row is locked first, so two imports check and store one
    certificate after the other (on SQLite every write transaction already runs alone)."""
    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk"))
    serial, issuer = _version_key(leaf)
    return CertificateVersion.objects.filter(certificate__owner=owner, serial=serial, issuer=issuer).exists()


def _certificate_label(found):
    names = ", ".join(found.domains)
    return f"{found.name} ({names})" if names and names != found.name else found.name


def _checked_files(found, owner):
    """The upload checks (key matches the leaf, chain in order, names), expired allowed:
    a CheckedUpload, or the list of messages saying what is wrong."""
    if not found.cert_pem:
        return [_("%(path)s: no certificate file was found for %(name)s") % {"path": found.source, "name": found.name}]
    try:
        return upload.check_upload(owner, found.cert_pem, found.chain_pem, found.key_pem, require_current=False)
    except ValidationError as exc:
        return _messages(found.source, exc)


def _version_key(leaf):
    """(serial, issuer) as upload.store_version stores them: the same certificate, whoever stored it."""
    return format(leaf.serial_number, "x"), leaf.issuer.rfc4514_string()


def _store_certificate(found: FoundCertificate, checked: upload.CheckedUpload, run: _Run):
    owner = run.owner
    account = _account(found.account, owner, run, found.source)
    credential = _dns_credential(found, run)
    try:
        request = certificates.clean_request(owner, found.domains or checked.domains, found.challenge,
                                             dns_credential=credential, challenge_alias=found.challenge_alias,
                                             webroot=found.webroot, server_config=found.server_config)
    except ValueError:  # not a ChallengeType: a reader's mistake, said plainly all the same
        raise _NotImported([_("%(path)s: unknown validation method %(method)s")
                            % {"path": found.source, "method": repr(found.challenge)}]) from None
    except ValidationError as exc:
        raise _NotImported(_messages(found.source, exc, paths={"webroot": found.webroot,
                                                               "server_config": found.server_config}))
    uncovered = [name for name in request["domains"]
                 if not any(validation.name_covers(have, name) for have in checked.domains)]
    if uncovered:
        raise _NotImported([_("%(path)s: the certificate file does not cover %(names)s")
                            % {"path": found.source, "names": ", ".join(uncovered)}])
    site = _covered_site(owner, request["domains"])
    try:
        quotas.check_room_for_certificate(owner)
    except ValidationError as exc:
        raise _NotImported(_messages(found.source, exc))
    certificate = Certificate.objects.create(
        owner=owner, site=site, account=account, source=Certificate.Source.ISSUED, domains=request["domains"],
        key_type=found.key_type if found.key_type in KeyType.values else checked.key_type,
        challenge=found.challenge, dns_credential=credential, challenge_alias=request["challenge_alias"],
        webroot=request["webroot"], server_config=request["server_config"], status=Certificate.Status.VALID,
    )
    version = upload.store_version(certificate, checked)
    # Issued when the leaf says, not now: the sweep's "too young to renew" guard is about
    # the certificate's age, and an expired import must renew at once.
    CertificateVersion.objects.filter(pk=version.pk).update(created_at=min(version.not_before, timezone.now()))
    certificate.current_version = version
    now = timezone.now()
    certificate.next_renewal_at = (now if version.not_after <= now
                                   else found.next_renewal_at or renewal_policy.planned_renewal(version))
    certificate.save(update_fields=["current_version", "next_renewal_at"])
    _install_target(found, certificate, run)
    if site is not None:
        dispatch.put_in_service(certificate, install_targets=False)  # the other client installed the files


def _covered_site(owner, names):
    """The owner's first site all of whose names the certificate covers, if any."""
    for site in Site.objects.filter(owner=owner):
        if all(any(validation.name_covers(name, domain) for name in names) for domain in site.domains):
            return site
    return None


# --- account


def _account_label(found: FoundAccount):
    email = found.email or _("no e-mail")
    return f"{email} @ {found.directory_url}"


def _account(found: FoundAccount | None, owner, run: _Run, source) -> AcmeAccount:
    """The owner's account at the same CA with the same key, else a new row with the found
    key and URL. Never registers: the CA already knows this account."""
    if found is None:
        raise _NotImported([_("%(path)s: no ACME account was found for this certificate, so the panel could not "
                              "renew it; import the client's account files too") % {"path": source}])
    where = found.source or source
    try:
        URLValidator(schemes=["https"])(found.directory_url)
    except ValidationError:
        raise _NotImported([_("%(path)s: the CA directory %(url)s is not an https URL")
                            % {"path": where, "url": repr(found.directory_url)}]) from None
    if not cas.preset_for_url(found.directory_url) and not access.is_admin(owner):
        raise _NotImported([_("%(path)s: the CA %(url)s is not one of the panel's CA presets, and only an "
                              "administrator may use another CA: import it for an administrator")
                            % {"path": where, "url": found.directory_url}])
    key = run.known.private_key(found.key_pem)
    if key is None:
        raise _NotImported([_("%(path)s: the ACME account key cannot be read") % {"path": where}])
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in ("secp256r1", "secp384r1")
            or isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048):
        raise _NotImported([_("%(path)s: the ACME account key must be EC P-256, P-384 or RSA of 2048 bits or more")
                            % {"path": where}])
    public = key.public_key().public_bytes(*_SPKI)
    label = _account_label(found)
    for account in AcmeAccount.objects.filter(owner=owner, directory_url=found.directory_url):
        if run.known.public_key(account.account_key) == public:
            run.made(ACCOUNT, account, label, created=False)
            return account
    email, messages = found.email, []
    try:
        validate_email(email) if email else None
    except ValidationError:
        email, messages = "", [_note(_("%(path)s: the e-mail address %(email)s is not valid; left out")
                                     % {"path": where, "email": repr(found.email)})]
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = AcmeAccount.objects.create(owner=owner, directory_url=found.directory_url, email=email,
                                         account_key=pem, account_url=found.account_url)
    if not found.account_url:
        messages.append(_note(_("the files do not say the account's URL; the panel asks the CA for it (by the same "
                                "key, no new account) when it first uses the account")))
    run.made(ACCOUNT, account, label, created=True, messages=messages)
    return account


def _public_key(pem):
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None).public_key().public_bytes(*_SPKI)
    except (ValueError, TypeError):
        return None


# --- DNS credential


def _dns_credential(found: FoundCertificate, run: _Run):
    """With dns-01: the owner's credential of the same provider with the same values, else
    a new one, checked like a user's. The label names the fields, never their values."""
    if found.challenge != ChallengeType.DNS01:
        return None
    try:
        values = dns_credentials.clean_values(found.dns_provider, found.dns_credentials, owner=run.owner)
    except ValidationError as exc:
        raise _NotImported(_messages(found.source, exc, prefix=_("DNS credentials for %(provider)s")
                                     % {"provider": found.dns_provider or "?"}))
    label_of = registry.provider_class(found.dns_provider).label
    names = {"provider": label_of, "fields": ", ".join(sorted(values)), "source": found.dns_source}
    # Translators: e.g. "Cloudflare credentials (auth_token, zone_id) from acme.sh dns_cf": the fields are
    # the provider's field names and the source how the other client named them, both as they are.
    label = (_("%(provider)s credentials (%(fields)s) from %(source)s") % names if found.dns_source
             else _("%(provider)s credentials (%(fields)s)") % names)
    for credential in DnsCredential.objects.filter(owner=run.owner, provider=found.dns_provider):
        if credential.values() == values:
            run.made(DNS_CREDENTIAL, credential, label, created=False)
            return credential
    name = (_("%(name)s (imported)") % {"name": found.dns_source or label_of})[:200]
    credential = dns_credentials.save_credential(DnsCredential(owner=run.owner), found.dns_provider, name, values)
    run.made(DNS_CREDENTIAL, credential, label, created=True)
    return credential


# --- install target and reload preset


def _install_target(found: FoundCertificate, certificate, run: _Run):
    """Where the other client copied the files, as an install target that is not run now:
    the files are already there. Its reload command becomes a preset of the import's owner."""
    if found.install is None:
        return
    paths = found.install.paths()
    if not paths:
        if found.install.reload_command:
            raise _NotImported([_("%(path)s: a reload command without install paths cannot be carried over; give "
                                  "the paths the files are copied to, or remove the command") % {"path": found.source}])
        return
    try:
        cleaned = install_targets.clean_target(paths, 0o600, 0o644, homes.install_roots_of(run.owner))
    except ValidationError as exc:
        raise _NotImported(_target_messages(found.source, paths, exc, run.owner))
    preset = (_reload_preset(found.install.reload_command, found.install.reload_name, run)
              if found.install.reload_command else None)
    target = InstallTarget.objects.create(owner=run.owner, certificate=certificate, reload_preset=preset,
                                          **{name: cleaned[name] for name in InstallTarget.PATH_FIELDS})
    run.made(INSTALL_TARGET, target, ", ".join(target.paths().values()), created=True)


def _target_messages(source, paths, exc, owner):
    messages = []
    for name, errors in exc.message_dict.items():
        path = paths.get(name, "")
        where = f"{source}: {name.replace('_', ' ')} {path}" if path else source
        messages += [f"{where}: {error}" for error in errors]
        hint = _widen_roots_hint(name, path) or _grant_hint(path, owner)
        if hint:
            messages.append(f"{where}: {hint}")
    return messages


def _grant_hint(path, owner):
    """What to change when a user's install path is below settings.INSTALL_ROOTS but outside
    their home and grants; None otherwise."""
    if not path.startswith("/") or validation.is_under(Path(path), homes.install_roots_of(owner)):
        return None
    return _("to import it, an administrator grants %(dir)s to %(user)s on the user's page") % {
        "dir": Path(path).parent, "user": owner.get_username()}


def _reload_preset(text, name, run: _Run):
    """ReloadPreset ["/bin/sh", "-c", TEXT] of the import's owner: exactly what the other client ran.
    Reused when the owner has, or is offered, the same command. An administrator's runs; one a
    user's import brought waits for an administrator's approval, as it runs on this server as
    the panel's user, and users never get to run commands of their own."""
    command = [_SHELL, "-c", text]
    admin = access.is_admin(run.owner)
    candidates = (ReloadPreset.objects.filter(Q(owner=run.owner) | Q(approved=True)) if admin
                  else access.scoped_or_shared(ReloadPreset, run.owner))
    existing = next((preset for preset in candidates if preset.command == command), None)
    if existing is not None:
        run.made(RELOAD_PRESET, existing, _preset_label(existing, text), created=False,
                 messages=() if existing.approved else [_awaiting_approval()])
        return existing
    preset = ReloadPreset(name=_free_preset_name(name or text), command=command, owner=run.owner, approved=admin)
    try:
        preset.full_clean()
    except ValidationError as exc:
        raise _NotImported(_messages(_("reload command"), exc))
    preset.save()
    run.made(RELOAD_PRESET, preset, _preset_label(preset, text), created=True,
             messages=() if admin else [_awaiting_approval()])
    return preset


def _awaiting_approval():
    return _note(_("the reload command runs only once an administrator has approved it: it would run on this "
                   "server. Until then each install copies the files and reports that the command did not run."))


def _preset_label(preset, text):
    """The preset's name, and the command when the name does not already show all of it."""
    return preset.name if " ".join(text.split()) in preset.name else f"{preset.name}: {text}"


def _free_preset_name(text):
    """ "Imported: <the command>", on one line, cut to fit, numbered if the name is taken."""
    limit = ReloadPreset._meta.get_field("name").max_length
    base = _("Imported: %(command)s") % {"command": " ".join(text.split())}
    for number in range(1, 1000):
        suffix = f" ({number})" if number > 1 else ""
        name = base if len(base) + len(suffix) <= limit else base[:limit - len(suffix) - 1] + "…"
        if not ReloadPreset.objects.filter(name=name + suffix).exists():
            return name + suffix
    raise _NotImported([_("no free name for a reload preset of %(command)s") % {"command": repr(text)}])


# --- messages


def _note(text):
    """A setting that did not carry over, said as a note (in the active language, like `text`)."""
    # Translators: a note of the import report: what did not carry over but does not stop the import.
    return _("note: %(note)s") % {"note": text}


def _messages(source, exc: ValidationError, prefix="", paths=None):
    """path: field: message lines of a ValidationError, with what to change when a path of
    `paths` ({field: path}) lies outside the directories the panel may use."""
    lines = []
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    for name, messages in errors.items():
        head = ": ".join(part for part in (source, prefix, name.replace("_", " ") if name != "__all__" else "")
                         if part)
        lines += [f"{head}: {message}" for message in messages]
        hint = _widen_roots_hint(name, (paths or {}).get(name, ""))
        if hint:
            lines.append(f"{head}: {hint}")
    return lines


def _widen_roots_hint(name, path):
    """What to change when `path`, given for the field `name`, lies outside the directories its
    setting allows; None when it does not (or the field is not a path)."""
    if name not in _ROOT_SETTINGS or not path.startswith("/"):
        return None
    setting, variable, add_folder = _ROOT_SETTINGS[name]
    if validation.is_under(Path(path), getattr(settings, setting)):
        return None
    # Translators: %(setting)s is an environment variable such as CERTPANEL_WEBROOT_ROOTS: keep it as is.
    return _("to import it, add %(path)s to %(setting)s") % {"path": Path(path).parent if add_folder else path,
                                                             "setting": variable}
