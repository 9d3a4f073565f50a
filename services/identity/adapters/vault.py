"""Encryption at rest and the keyed look-up index for personal values.

``seal`` encrypts with AES-256-GCM under the current data key; the result
carries the key id, so values sealed under an older key still open after a
rotation. The associated data binds a ciphertext to its place (table, column,
row), so a ciphertext copied into another row or column does not open.

``index`` is a keyed HMAC-SHA256, never a plain hash: ID and phone numbers are
few enough to enumerate, so an unkeyed hash would give them away.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.identity.adapters.keys import KeyRing

_VERSION = 1
_NONCE_BYTES = 12


class VaultError(Exception):
    """A sealed value does not open: an unknown key, a wrong place, or tampering."""


class Vault:
    def __init__(self, keys: KeyRing) -> None:
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.data_keys}
        self.current_key_id = keys.data_keys[0][0]
        self._index_key = keys.index_key

    def seal(self, plaintext: str, *, place: str) -> bytes:
        """Encrypt ``plaintext`` for ``place`` (e.g. ``users.id_number:<row id>``)."""
        kid = self.current_key_id.encode()
        header = bytes([_VERSION, len(kid)]) + kid
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.current_key_id].encrypt(
            nonce, plaintext.encode(), header + place.encode()
        )
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
