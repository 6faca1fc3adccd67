"""The backup archive's format, apart from what goes into it (panel.maintenance.backup).

A gzipped tar:

    manifest.json   in clear: format and version, what made the archive, and the sha256 and size
                    of every other member
    manifest.hmac   HMAC-SHA256 of manifest.json under a key derived from the passphrase: an
                    archive re-packed with an edited manifest is refused like an edited member
    *.enc           everything else (the database, the keys, certificate files, nginx additions),
                    sealed with AES-256-GCM under the same passphrase

The key comes from the passphrase through scrypt (salt and cost in the manifest). A member is
sealed in chunks of CHUNK bytes; each chunk's nonce holds its position and its associated data
the member's name and whether it is the last, so no chunk can be swapped between members,
reordered or dropped, and a member cut short is noticed. Opening an archive reads and checks
all of it before the caller may change anything (ArchiveReader.open).
"""

import gzip
import hashlib
import hmac
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
import time
import zlib
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "certpanel-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_HMAC = "manifest.hmac"
CHUNK = 1 << 20
MAGIC = b"CPB1"
# scrypt: 32 MiB of memory, a fraction of a second; the bounds keep a forged manifest from
# asking a restore for gigabytes.
SCRYPT = {"n": 1 << 15, "r": 8, "p": 1}
SCRYPT_LIMITS = {"n": 1 << 20, "r": 16, "p": 4}


def valid_member_name(name: str) -> bool:
    """Relative, without "." or ".." parts or control characters: no member can name a place
    outside where a restore puts it."""
    return (0 < len(name) <= 4096 and not name.startswith("/") and not any(ord(c) < 32 for c in name)
            and all(part not in ("", ".", "..") for part in name.split("/")))


class ArchiveRefused(Exception):
    """The archive cannot be used; the message says why and what to do."""


class ArchiveDamaged(ArchiveRefused):
    pass


class ArchiveAltered(ArchiveRefused):
    pass


class WrongPassphrase(ArchiveRefused):
    pass


class UnknownFormat(ArchiveRefused):
    pass


def derive_keys(passphrase: str, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """(sealing key, manifest MAC key) from the passphrase."""
    material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase.encode())
    return material[:32], material[32:]


def _aad(name: str, last: bool) -> bytes:
    return name.encode() + b"\0" + (b"\1" if last else b"\0")


class _Sealer:
    """A file-like writer: what is written reaches `out` sealed, chunk by chunk."""

    def __init__(self, out, name: str, key: bytes):
        self.out, self.name, self.aead = out, name, AESGCM(key)
        self.prefix = os.urandom(8)
        self.index = 0
        self.buffer = bytearray()
        out.write(MAGIC + self.prefix)

    def write(self, data):
        self.buffer += data.encode() if isinstance(data, str) else data
        while len(self.buffer) > CHUNK:  # keep at least one byte back: the last chunk is never empty unless all is
            self._emit(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]
        return len(data)

    def close(self):
        self._emit(bytes(self.buffer), last=True)
        self.buffer = bytearray()

    def _emit(self, plain: bytes, last: bool):
        nonce = self.prefix + struct.pack(">I", self.index)
        sealed = self.aead.encrypt(nonce, plain, _aad(self.name, last))
        self.out.write(struct.pack(">?I", last, len(sealed)) + sealed)
        self.index += 1


def unseal(source, target, name: str, key: bytes) -> None:
    """Copy the sealed member `source` (a binary file) opened into `target`. Raises
    ArchiveAltered if any chunk does not open or the member ends before its last chunk."""
    aead = AESGCM(key)
    header = source.read(len(MAGIC) + 8)
    if len(header) != len(MAGIC) + 8 or not header.startswith(MAGIC):
        raise ArchiveAltered(f"The member {name} of the archive is not sealed as this panel seals them.")
    prefix, index = header[len(MAGIC):], 0
    while True:
        head = source.read(5)
        if len(head) < 5:
            raise ArchiveAltered(f"The member {name} of the archive ends before its last part: it was cut short.")
        last, size = struct.unpack(">?I", head)
        sealed = source.read(size)
        try:
            target.write(aead.decrypt(prefix + struct.pack(">I", index), sealed, _aad(name, last)))
        except InvalidTag:
            raise ArchiveAltered(f"The member {name} of the archive does not open: it was altered or damaged "
                                 "(or sealed with another passphrase).") from None
        index += 1
        if last:
            break
    if source.read(1):
        raise ArchiveAltered(f"The member {name} of the archive has data after its last part: it was altered.")


class _Hashing:
    """Counts and hashes what is written through it."""

    def __init__(self, out):
        self.out, self.sha256, self.size = out, hashlib.sha256(), 0

    def write(self, data):
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


class ArchiveWriter:
    """Members are sealed into a private staging directory beside `out`; finish() packs them with
    the manifest into `out`.partial (0600) and renames that to `out`. Nothing is left behind
    on failure, and `out` is never a half-written archive."""

    def __init__(self, out: Path, passphrase: str):
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.salt = os.urandom(16)
        self.key, self.mac_key = derive_keys(passphrase, self.salt, **SCRYPT)
        self.members: dict[str, dict] = {}
        self._staged: dict[str, Path] = {}
        self._staging = None

    def __enter__(self):
        self._staging = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.staging-"))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self._staging, ignore_errors=True)
        self.partial.unlink(missing_ok=True)

    def _new_member(self, name, meta):
        if not valid_member_name(name) or name in self.members or name in (MANIFEST, MANIFEST_HMAC):
            raise ValueError(f"bad or repeated member name {name!r}")
        path = self._staging / str(len(self._staged))
        self._staged[name] = path
        self.members[name] = dict(meta)
        return path

    def sealed(self, name: str, **meta):
        """A context manager giving a writer (bytes or text) whose content becomes member `name`."""
        return _SealedMember(self, name, meta)

    def add_bytes(self, name: str, data: bytes, **meta):
        with self.sealed(name, **meta) as writer:
            writer.write(data)

    def add_file(self, name: str, path: Path, **meta):
        with open(path, "rb") as source, self.sealed(name, **meta) as writer:
            shutil.copyfileobj(source, writer, CHUNK)

    def finish(self, **manifest_fields) -> dict:
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest_fields,
            "kdf": {"name": "scrypt", "salt": b64encode(self.salt).decode(), **SCRYPT},
            "cipher": "AES-256-GCM",
            "members": self.members,
        }
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
        mac = hmac.new(self.mac_key, manifest_bytes, hashlib.sha256).hexdigest().encode()
        now = int(time.time())
        self.partial.unlink(missing_ok=True)  # a leftover of an earlier run that died
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes), now)
                _add(tar, MANIFEST_HMAC, io.BytesIO(mac), len(mac), now)
                for name, path in self._staged.items():
                    with open(path, "rb") as member:
                        _add(tar, name, member, path.stat().st_size, now)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(self.partial, self.out)
        directory = os.open(self.out.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return manifest


class _SealedMember:
    def __init__(self, writer: ArchiveWriter, name: str, meta: dict):
        self.writer, self.name, self.meta = writer, name, meta

    def __enter__(self):
        path = self.writer._new_member(self.name, self.meta)
        self.file = open(path, "xb")
        self.hashing = _Hashing(self.file)
        self.sealer = _Sealer(self.hashing, self.name, self.writer.key)
        return self.sealer

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                self.sealer.close()
                self.writer.members[self.name].update(sha256=self.hashing.sha256.hexdigest(), size=self.hashing.size)
        finally:
            self.file.close()


def _add(tar, name, fileobj, size, mtime):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, mtime
    tar.addfile(info, fileobj)


@dataclass
class OpenedArchive:
    manifest: dict
    secrets: dict
    directory: Path  # the opened members, by name
    members: dict = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.directory / name


def _read_members(archive: Path, sealed_dir: Path) -> dict[str, tuple[Path, str, int]]:
    """Every member streamed to `sealed_dir`: {name: (path, sha256, size)}. Raises ArchiveDamaged
    for an archive that cannot be read to its end."""
    found = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for info in tar:
                if not info.isfile() or not valid_member_name(info.name) or info.name in found:
                    raise ArchiveAltered(f"The archive holds an unexpected entry {info.name!r}: it was not made by "
                                         "manage.py backup, or was altered.")
                path = sealed_dir / str(len(found))
                hashing_target = open(path, "xb")
                with hashing_target:
                    hashing = _Hashing(hashing_target)
                    shutil.copyfileobj(tar.extractfile(info), hashing, CHUNK)
                if hashing.size != info.size:
                    raise ArchiveDamaged(f"The archive ends inside its member {info.name}.")
                found[info.name] = (path, hashing.sha256.hexdigest(), hashing.size)
    except FileNotFoundError:
        raise ArchiveRefused(f"There is no archive at {archive}.") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveDamaged(
            f"The archive {archive} cannot be read to its end ({exc}): it is incomplete or damaged, e.g. cut "
            "short while being copied. Use a complete copy of it.") from None
    except OSError as exc:
        raise ArchiveRefused(f"The archive {archive} cannot be read ({exc.strerror}).") from None
    return found


def _load_manifest(found) -> dict:
    if MANIFEST not in found or MANIFEST_HMAC not in found:
        raise ArchiveDamaged("The archive has no manifest: it was not made by manage.py backup, or is incomplete.")
    try:
        manifest = json.loads(found[MANIFEST][0].read_bytes())
    except ValueError:
        raise ArchiveAltered("The archive's manifest is not readable: the archive was altered or damaged.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UnknownFormat("This is not a CertPanel backup (its manifest names no known format).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise UnknownFormat(
            f"The archive is in backup format version {version}; this panel reads version {FORMAT_VERSION}. "
            "Restore it with the panel version that made it"
            + (f" (commit {manifest['panel']['commit']})" if isinstance(manifest.get("panel"), dict)
               and manifest["panel"].get("commit") else "") + ".")
    return manifest


def _check_members(manifest, found):
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise ArchiveAltered("The archive's manifest lists no members: the archive was altered.")
    present = set(found) - {MANIFEST, MANIFEST_HMAC}
    missing = sorted(set(listed) - present)
    if missing:
        raise ArchiveDamaged(f"The archive lacks {len(missing)} member(s) its manifest lists (e.g. {missing[0]}): "
                             "it is incomplete. Use a complete copy of it.")
    extra = sorted(present - set(listed))
    if extra:
        raise ArchiveAltered(f"The archive holds a member its manifest does not list ({extra[0]}): it was altered.")
    for name in sorted(listed):
        _path, sha256, size = found[name]
        if not isinstance(listed[name], dict) or listed[name].get("sha256") != sha256 or listed[name].get(
                "size") != size:
            raise ArchiveAltered(f"The member {name} does not match its checksum in the manifest: the archive was "
                                 "altered or damaged. Use an intact copy of it.")


def _keys_for(manifest, passphrase):
    kdf = manifest.get("kdf") or {}
    try:
        salt = b64decode(kdf["salt"], validate=True)
        cost = {name: int(kdf[name]) for name in ("n", "r", "p")}
    except (KeyError, TypeError, ValueError):
        raise ArchiveAltered("The archive's manifest has no usable key derivation: it was altered.") from None
    if kdf.get("name") != "scrypt" or len(salt) < 16 or any(
            not 1 <= cost[name] <= SCRYPT_LIMITS[name] for name in cost):
        raise ArchiveAltered("The archive's manifest asks for a key derivation this panel does not use: it was "
                             "altered.")
    try:
        return derive_keys(passphrase, salt, **cost)
    except ValueError:
        raise ArchiveAltered("The archive's manifest asks for an impossible key derivation: it was altered.") from None


def open_archive(archive: Path, passphrase: str, workdir: Path, secrets_member: str) -> OpenedArchive:
    """Read `archive` whole and check it: readable to its end, a known format, every member
    present and matching its checksum, the manifest untouched, the passphrase right, every
    member opening. Only then are the members opened into `workdir` (private, the caller's
    to remove). Raises ArchiveRefused (a subclass) saying what is wrong; changes nothing else."""
    sealed_dir, opened_dir = workdir / "sealed", workdir / "opened"
    sealed_dir.mkdir(mode=0o700)
    opened_dir.mkdir(mode=0o700)
    found = _read_members(Path(archive), sealed_dir)
    manifest = _load_manifest(found)
    _check_members(manifest, found)
    key, mac_key = _keys_for(manifest, passphrase)
    expected = hmac.new(mac_key, found[MANIFEST][0].read_bytes(), hashlib.sha256).hexdigest().encode()
    manifest_intact = hmac.compare_digest(expected, found[MANIFEST_HMAC][0].read_bytes().strip())
    if secrets_member not in manifest["members"]:
        raise ArchiveDamaged("The archive holds no keys: it is incomplete.")
    try:
        with open(found[secrets_member][0], "rb") as source:
            plain = io.BytesIO()
            unseal(source, plain, secrets_member, key)
    except ArchiveAltered:
        if manifest_intact:  # the passphrase opened the manifest's seal: the keys were changed
            raise
        raise WrongPassphrase("The passphrase does not open this archive: it is not the passphrase the backup "
                              "was made with. Nothing was changed; run again with the right one.") from None
    if not manifest_intact:
        raise ArchiveAltered("The archive's manifest was changed after the backup was made: it was altered. Use "
                             "an intact copy of it.")
    try:
        secrets = json.loads(plain.getvalue())
    except ValueError:
        raise ArchiveAltered("The keys in the archive are not readable.") from None
    for name in sorted(manifest["members"]):
        if name == secrets_member:
            continue
        target = opened_dir / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(found[name][0], "rb") as source, open(target, "xb") as out:
            os.fchmod(out.fileno(), 0o600)
            unseal(source, out, name, key)
    shutil.rmtree(sealed_dir)
    return OpenedArchive(manifest=manifest, secrets=secrets, directory=opened_dir, members=manifest["members"])
