"""Encryption at rest and keyed look-ups for personal values: one module for every service.

``seal`` encrypts with AES-256-GCM under the current data key; the result carries
the key id, so values sealed under an older key still open after a rotation. The
associated data binds a ciphertext to its place (table, column, row), so a
ciphertext copied into another row or column does not open.

``index`` is a keyed HMAC-SHA256, never a plain hash: ID and phone numbers are
few enough to enumerate, so an unkeyed hash would give them away.

``seal_fixed`` / ``open_fixed`` are for values that must be both found and used, such as
a phone number that is looked up, joined on and dialled: AES-SIV (RFC 5297), a
deterministic authenticated encryption whose synthetic IV is a keyed PRF of the value.
Equal numbers give equal ciphertexts, as a keyed HMAC would, so indexes, joins and
uniqueness work on it; the number comes back for dialling. Its key is derived from the
index key and, like it, changes only with a re-index.

A database engine carries its service's vault (``attach``), so column types
(:mod:`services.common.sealed`) seal and open values without a global key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.common.keys import KeyRing

_VERSION = 1
_NONCE_BYTES = 12
_FIXED_PREFIX = "s1."
#: Fixed seals remembered (value to ciphertext): a fan-out writes each contact's number to
#: four tables, and reads it from a fifth, in one chunk. Bounded; forgotten all at once.
_FIXED_MEMO = 8192


class VaultError(Exception):
    """A sealed value does not open: an unknown key, a wrong place, or tampering."""


class Vault:
    def __init__(self, keys: KeyRing) -> None:
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.data_keys}
        self.current_key_id = keys.data_keys[0][0]
        kid = self.current_key_id.encode()
        #: Every value sealed under the current key starts with this header (a fan-out seals
        #: an SMS payload per contact: built once, not per seal).
        self._header = bytes([_VERSION, len(kid)]) + kid
        self._sealer = self._ciphers[self.current_key_id]
        self.key_ids = tuple(kid for kid, _ in keys.data_keys)
        self._index_key = keys.index_key
        siv_key = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None, info=b"antifraud fixed seal v1"
        ).derive(keys.index_key)
        self._siv = AESSIV(siv_key)
        self._fixed: dict[tuple[str, str], str] = {}

    def seal(self, plaintext: str, *, place: str) -> bytes:
        """Encrypt ``plaintext`` for ``place`` (e.g. ``users.id_number:<row id>``)."""
        header = self._header
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._sealer.encrypt(nonce, plaintext.encode(), header + place.encode())
        return header + nonce + sealed

    def open(self, sealed: bytes, *, place: str) -> str:
        """The plaintext of a value sealed for ``place``; ``VaultError`` otherwise."""
        kid = self.key_id_of(sealed)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise VaultError(f"data key {kid!r} is not configured")
        header_len = 2 + len(kid.encode())
        header = sealed[:header_len]
        nonce = sealed[header_len : header_len + _NONCE_BYTES]
        try:
            plain = cipher.decrypt(
                nonce, sealed[header_len + _NONCE_BYTES :], header + place.encode()
            )
        except InvalidTag:
            raise VaultError(f"value for {place.split(':', 1)[0]} does not open") from None
        return plain.decode()

    def reseal(self, sealed: bytes, *, place: str) -> bytes:
        """``sealed`` under the current key (a rotation moving an old row forward)."""
        return self.seal(self.open(sealed, place=place), place=place)

    @staticmethod
    def key_id_of(sealed: bytes) -> str:
        if len(sealed) < 2 or sealed[0] != _VERSION:
            raise VaultError("not a sealed value")
        kid_len = sealed[1]
        if len(sealed) < 2 + kid_len + _NONCE_BYTES + 16:
            raise VaultError("sealed value is truncated")
        return sealed[2 : 2 + kid_len].decode()

    def index(self, purpose: str, value: str) -> str:
        """The look-up key of a canonical value; ``purpose`` keeps the fields' indexes apart."""
        mac = hmac.new(self._index_key, purpose.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return mac.hexdigest()

    def seal_fixed(self, plaintext: str, *, purpose: str) -> str:
        """The deterministic ciphertext of ``plaintext`` as text (``s1.<base64>``): equal
        values give equal results within one ``purpose``, and only this vault opens it."""
        found = self._fixed.get((purpose, plaintext))
        if found is None:
            raw = self._siv.encrypt(plaintext.encode(), [purpose.encode()])
            found = _FIXED_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")
            self._remember(purpose, plaintext, found)
        return found

    def _remember(self, purpose: str, plaintext: str, sealed: str) -> None:
        if len(self._fixed) >= _FIXED_MEMO:
            self._fixed.clear()
        self._fixed[(purpose, plaintext)] = sealed

    def open_fixed(self, sealed: str, *, purpose: str) -> str:
        if not sealed.startswith(_FIXED_PREFIX):
            raise VaultError("not a fixed-sealed value")
        text = sealed[len(_FIXED_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plaintext = self._siv.decrypt(raw, [purpose.encode()]).decode()
        except (InvalidTag, ValueError):
            raise VaultError(f"value for {purpose} does not open") from None
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") == text:  # as seal_fixed writes it
            self._remember(purpose, plaintext, sealed)
        return plaintext

    @staticmethod
    def is_fixed_sealed(value: str) -> bool:
        return value.startswith(_FIXED_PREFIX)


_ATTRIBUTE = "_antifraud_vault"


def attach(engine: Any, vault: Vault | Callable[[], Vault]) -> None:
    """Give an engine (sync or async) its service's vault, for the sealed column types; a
    loader is called the first time a value is sealed or opened (so migrations, which
    never do, need no keys)."""
    sync = getattr(engine, "sync_engine", engine)
    setattr(sync.dialect, _ATTRIBUTE, vault)


def of_dialect(dialect: Any) -> Vault:
    found = getattr(dialect, _ATTRIBUTE, None)
    if found is None:
        raise VaultError("this database has no vault: the service must attach its keys")
    if not isinstance(found, Vault):
        found = found()
        setattr(dialect, _ATTRIBUTE, found)
    assert isinstance(found, Vault)
    return found


def of_connection(conn: Any) -> Vault:
    """The vault of a connection's engine (sync or async connection)."""
    return of_dialect(conn.dialect)
