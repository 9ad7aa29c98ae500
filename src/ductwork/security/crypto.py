"""Encryption of credential data at rest: Fernet (AES-128-CBC + HMAC-SHA256) keys, newest first.

Key material comes from `DUCTWORK_SECRET_KEY` (comma-separated Fernet keys,
newest first) or, when that is unset, from `data_dir/secret.key`: one key per
line, newest first, generated on first start with mode 0600. A key file that
group or others may read is refused: whoever reads it reads every credential.

`MultiFernet` encrypts with the first key and decrypts with any, so rotation is
"put a new key first, re-encrypt everything (`MultiFernet.rotate`), drop the
old keys". For the key file `CredentialService.rotate_key` does all three; with
`DUCTWORK_SECRET_KEY` the operator edits the environment (docs/credentials.md).

No message of this module ever contains a key or a plaintext.

`cryptography` (tens of milliseconds to import) loads on the first encryption or
decryption, not at start: a process checks its keys (their base64 and length, as
Fernet does) when it starts, and most runs never touch a credential.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ductwork.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

log = logging.getLogger("ductwork.security")

KEY_FILE_NAME = "secret.key"

GENERATE_HINT = "generate one with `ductwork credentials generate-key`"


class SecretKeyError(Exception):
    """The key material is missing, malformed or not private; the process must not start."""


class DecryptionFailed(Exception):
    """A ciphertext was made with a key that is not among the configured ones (or was altered)."""


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 of 32 bytes), as `Fernet.generate_key`."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def fingerprint(key: str) -> str:
    """A short, non-secret name for a key (first 12 hex digits of its SHA-256)."""
    return hashlib.sha256(key.encode("ascii", "replace")).hexdigest()[:12]


def _check_keys(keys: Sequence[str], where: str) -> None:
    """Refuse what `Fernet(key)` would refuse, without importing `cryptography`."""
    if not keys:
        raise SecretKeyError(f"{where} holds no key; {GENERATE_HINT}")
    for index, key in enumerate(keys, start=1):
        try:
            # What Fernet's constructor checks: url-safe base64 of exactly 32 bytes.
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (ValueError, UnicodeEncodeError):  # binascii.Error is a ValueError
            valid = False
        if not valid:
            # Never echo the value: it may be a real key with a typo.
            raise SecretKeyError(
                f"{where}: key #{index} of {len(keys)} is not a Fernet key "
                f"(32 bytes, url-safe base64: 44 characters ending in '='); {GENERATE_HINT}"
            )


def _multi_fernet(keys: Sequence[str]) -> MultiFernet:
    """The keys (checked by `_check_keys`) as one MultiFernet, newest first."""
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key.encode("ascii")) for key in keys])


def parse_keys(text: str) -> list[str]:
    """Keys from `DUCTWORK_SECRET_KEY` (commas) or a key file (lines); blanks ignored."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _check_private(path: Path, mode: int) -> None:
    if os.name == "posix" and mode & 0o077:
        raise SecretKeyError(
            f"{path} may be read or written by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"whoever reads it can decrypt every credential. Run `chmod 600 {path}` "
            "(and check who could have read it), or set DUCTWORK_SECRET_KEY instead"
        )


def read_key_file(path: Path) -> list[str]:
    """The keys in an existing key file, after checking it is private to its owner."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _check_private(path, os.fstat(fd).st_mode)
        with os.fdopen(fd, "r", encoding="ascii", errors="replace") as file:
            fd = -1
            text = file.read()
    finally:
        if fd >= 0:
            os.close(fd)
    keys = parse_keys(text)
    _check_keys(keys, str(path))
    return keys


def _write_private(path: Path, keys: Sequence[str]) -> Path:
    """Write `keys` to a new temporary file beside `path`, mode 0600, flushed to disk."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    # O_EXCL with 0o600: the file never exists with wider permissions, whatever the umask.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, ("\n".join(keys) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return temporary


def create_key_file(path: Path) -> list[str]:
    """Create `path` with one new key unless it exists; the keys it holds either way.

    The key is written to a private temporary file first and linked into place,
    so two processes starting together agree on one key and neither ever reads a
    half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    temporary = _write_private(path, [key])
    try:
        os.link(temporary, path)
    except FileExistsError:
        return read_key_file(path)
    finally:
        temporary.unlink()
    log.info("generated a credentials key in %s (mode 0600); back it up with the store", path)
    return [key]


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file atomically with `keys` (newest first), mode 0600."""
    _check_keys(keys, str(path))
    os.replace(_write_private(path, keys), path)


class KeyRing:
    """The configured keys as a MultiFernet, newest first.

    From a key file, the file is re-read when it changes (one `stat` per use), so
    a server keeps working through `ductwork credentials rotate-key` run beside
    it: it encrypts with the new key as soon as the file names it first.
    """

    def __init__(self, keys: Sequence[str], *, path: Path | None = None) -> None:
        self.path = path
        self._where = str(path) if path is not None else "DUCTWORK_SECRET_KEY"
        self._set(keys)
        self._stamp = self._file_stamp()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """`DUCTWORK_SECRET_KEY` when set, else `data_dir/secret.key` (created when absent).

        Raises SecretKeyError with a message an operator can act on.
        """
        if settings.secret_key is not None:
            keys = parse_keys(settings.secret_key.get_secret_value())
            if not keys:
                raise SecretKeyError(f"DUCTWORK_SECRET_KEY is set but empty; {GENERATE_HINT}")
            return cls(keys)
        path = settings.data_dir / KEY_FILE_NAME
        try:
            keys = read_key_file(path)
        except FileNotFoundError:
            keys = create_key_file(path)
        if settings.redis_url:
            log.warning(
                "credentials are encrypted with the key file %s: every API and worker process "
                "must read the same key; set DUCTWORK_SECRET_KEY on all of them",
                path,
            )
        return cls(keys, path=path)

    @property
    def from_file(self) -> bool:
        return self.path is not None

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys, newest (the one that encrypts) first."""
        self._refresh()
        return self._keys

    def _set(self, keys: Sequence[str]) -> None:
        _check_keys(keys, self._where)
        self._keys = tuple(keys)
        self._multi: MultiFernet | None = None  # built on first use (imports cryptography)

    @property
    def _fernet(self) -> MultiFernet:
        if self._multi is None:
            self._multi = _multi_fernet(self._keys)
        return self._multi

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _refresh(self) -> None:
        if self.path is None:
            return
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return
        self._set(read_key_file(self.path))
        self._stamp = stamp

    def replace(self, keys: Sequence[str]) -> None:
        """Use `keys` from now on; with a key file, write them to it first."""
        if self.path is not None:
            write_key_file(self.path, keys)
            self._stamp = self._file_stamp()
        self._set(keys)

    def encrypt(self, plaintext: bytes) -> str:
        """A token encrypted (and authenticated) with the newest key."""
        self._refresh()
        return self._fernet.encrypt(plaintext).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        """The plaintext of a token made with any configured key; DecryptionFailed otherwise."""
        with self._reading() as fernet:
            return fernet.decrypt(token.encode("ascii"))

    def rotate(self, token: str) -> str:
        """The same plaintext encrypted with the newest key."""
        with self._reading() as fernet:
            return fernet.rotate(token.encode("ascii")).decode("ascii")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[MultiFernet]:
        """The current keys, for reading a token: one no key decrypts is DecryptionFailed."""
        self._refresh()
        fernet = self._fernet
        from cryptography.fernet import InvalidToken  # loaded by `_fernet` already

        try:
            yield fernet
        except (InvalidToken, UnicodeEncodeError):
            raise DecryptionFailed(self._wrong_key()) from None

    def _wrong_key(self) -> str:
        return (
            f"none of the {len(self._keys)} key(s) in {self._where} decrypts it: it was encrypted "
            "with another key (keep the old key after the new one until `ductwork credentials "
            "rotate-key` has re-encrypted everything) or the stored data was altered"
        )
