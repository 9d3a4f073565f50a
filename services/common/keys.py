"""A service's keys: data keys (AES-256-GCM) and the index key (keyed look-ups).

Every service that keeps personal data has a key ring of its own (identity, report,
warning): a leak of one service's keys opens nothing of another's.

From configuration:

* ``ANTIFRAUD_<SERVICE>_DATA_KEYS``: ``k1:<base64 32 bytes>,k2:<base64 32 bytes>``; the
  first key encrypts, every key decrypts (rotation: put the new key first, keep the old
  ones until the background re-encryption has moved every row; see docs/data.md).
* ``ANTIFRAUD_<SERVICE>_INDEX_KEY``: ``<base64 32 bytes>``, the key of the look-up index.

With neither set (``make run`` on a laptop), keys are generated once into
``<keys dir>/<service>.keys`` (mode 0600, in a 0700 directory) and read from there
afterwards. The keys dir is ``ANTIFRAUD_KEYS_DIR`` (default ``var/keys``), apart from
the data dir: a copy of the databases is not a copy of their keys. A key file found in
the data dir (where older versions generated it) is moved to the keys dir. Key material
never reaches a log line or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from services.common import config
from services.common.config import env, env_key
from services.common.files import private_dir
from services.common.logs import get_logger

log = get_logger("keys")

KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class KeyConfigError(ValueError):
    """The keys are missing or malformed; the message names the setting, never the key."""


@dataclass(frozen=True)
class KeyRing:
    #: (key id, key) pairs; the first one encrypts.
    data_keys: tuple[tuple[str, bytes], ...]
    index_key: bytes

    def __post_init__(self) -> None:
        if not self.data_keys:
            raise KeyConfigError("at least one data key is required")
        ids = [kid for kid, _ in self.data_keys]
        if len(set(ids)) != len(ids):
            raise KeyConfigError("data key ids must be unique")
        for kid, key in self.data_keys:
            if _KEY_ID.fullmatch(kid) is None:
                raise KeyConfigError("a data key id must be 1-32 letters, digits, '_' or '-'")
            if len(key) != KEY_BYTES:
                raise KeyConfigError(f"data key {kid} must be {KEY_BYTES} bytes")
        if len(self.index_key) != KEY_BYTES:
            raise KeyConfigError(f"the index key must be {KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return f"KeyRing(data_key_ids={[kid for kid, _ in self.data_keys]})"

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls(((key_id, secrets.token_bytes(KEY_BYTES)),), secrets.token_bytes(KEY_BYTES))


def _decode_key(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    text = text.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{what} is not valid base64") from None


def parse_data_keys(
    raw: str, setting: str = "ANTIFRAUD_IDENTITY_DATA_KEYS"
) -> tuple[tuple[str, bytes], ...]:
    """``k1:<b64>,k2:<b64>`` → ((id, key), ...), first first."""
    keys: list[tuple[str, bytes]] = []
    for item in raw.split(","):
        if not item.strip():
            continue
        kid, sep, material = item.strip().partition(":")
        if not sep:
            raise KeyConfigError(f"{setting} items must be <id>:<base64 key>")
        keys.append((kid, _decode_key(material, f"data key {kid}")))
    return tuple(keys)


def from_settings(
    data_keys: str, index_key: str, setting: str = "ANTIFRAUD_IDENTITY_DATA_KEYS"
) -> KeyRing:
    return KeyRing(parse_data_keys(data_keys, setting), _decode_key(index_key, "the index key"))


def _encode(ring: KeyRing) -> bytes:
    document = {
        "data_keys": [
            {"id": kid, "key": base64.b64encode(key).decode()} for kid, key in ring.data_keys
        ],
        "index_key": base64.b64encode(ring.index_key).decode(),
    }
    return json.dumps(document, indent=2).encode()


def _decode(raw: bytes, name: str) -> KeyRing:
    try:
        document = json.loads(raw)
        keys = tuple(
            (str(item["id"]), _decode_key(str(item["key"]), f"data key {item['id']}"))
            for item in document["data_keys"]
        )
        return KeyRing(keys, _decode_key(str(document["index_key"]), "the index key"))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, KeyConfigError):
            raise
        raise KeyConfigError(f"{name} is malformed") from None


def load_or_create(path: Path, *, service: str = "identity") -> KeyRing:
    """The key ring in ``path``, generating it first when there is none.

    Two processes starting together both end up with the same keys: the file
    appears atomically (a hard link of a complete temporary file), and the one
    that loses the race reads the winner's.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    ring = KeyRing.generate()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_encode(ring))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read(path)
    finally:
        tmp.unlink(missing_ok=True)
    prefix = f"ANTIFRAUD_{config.env_key(service)}"
    log.warning(
        f"generated {service} keys; set {prefix}_DATA_KEYS and {prefix}_INDEX_KEY in production",
        path=str(path),
        data_key_ids=[kid for kid, _ in ring.data_keys],
    )
    return ring


def _read(path: Path) -> KeyRing:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyConfigError(f"{path} must be readable by its owner only (chmod 600)")
    return _decode(path.read_bytes(), path.name)


def keys_file(service: str, keys_dir: Path) -> Path:
    return keys_dir / f"{service}.keys"


def _move_legacy(service: str, data_dir: Path, target: Path) -> None:
    """Older versions generated ``<data dir>/<service>.keys``: move it to the keys dir (the
    rows it sealed still need it), once, and never overwrite a key file already there."""
    legacy = data_dir / f"{service}.keys"
    if target.exists() or not legacy.exists() or legacy.resolve() == target.resolve():
        return
    private_dir(target.parent)
    try:
        os.link(legacy, target)
    except FileExistsError:
        return
    except OSError:  # another file system: copy, keeping the mode
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(legacy.read_bytes())
            f.flush()
            os.fsync(f.fileno())
    os.chmod(target, 0o600)
    legacy.unlink()
    log.warning("moved a key file out of the data dir", service=service, path=str(target))


def load(
    data_keys: str,
    index_key: str,
    data_dir: Path,
    *,
    service: str = "identity",
    keys_dir: Path | None = None,
) -> KeyRing:
    """The keys from configuration, or from (or into) the keys dir when none are configured."""
    prefix = f"ANTIFRAUD_{config.env_key(service)}"
    if data_keys and index_key:
        return from_settings(data_keys, index_key, f"{prefix}_DATA_KEYS")
    if data_keys or index_key:
        raise KeyConfigError(f"set both {prefix}_DATA_KEYS and {prefix}_INDEX_KEY, or neither")
    directory = keys_dir if keys_dir is not None else config.keys_dir()
    path = keys_file(service, directory)
    _move_legacy(service, data_dir, path)
    return load_or_create(path, service=service)


def load_service(service: str) -> KeyRing:
    """A service's key ring from its ``ANTIFRAUD_<SERVICE>_DATA_KEYS`` / ``_INDEX_KEY``, else
    from the keys dir."""
    return load(
        env(f"{env_key(service)}_DATA_KEYS"),
        env(f"{env_key(service)}_INDEX_KEY"),
        config.data_dir(),
        service=service,
    )
