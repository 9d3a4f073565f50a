"""A key issued to an install, kept for a retry of the same request and readable only by it.

Registration and sign-in answer with a new API key. Should that answer be lost,
the app repeats the request (same request id, same install key) and must get the
same key back, yet the gateway stores no key in clear. The new key is sealed with
AES-256-GCM under a key derived (HKDF-SHA256) from the install key's secret, which
the gateway never stores (only its hash): the stored record is useless without
the install key that asked, and the request id is bound as associated data.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"


class NotYours(Exception):
    """The sealed key was not sealed for this install key and request."""


def _aead(install_secret: str, install_key_id: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=install_key_id.encode(),
        info=b"antifraud gateway issued key",
    ).derive(install_secret.encode())
    return AESGCM(derived)


def seal(token: str, *, install_key_id: str, install_secret: str, request_id: str) -> str:
    nonce = os.urandom(12)
    sealed = _aead(install_secret, install_key_id).encrypt(
        nonce, token.encode(), request_id.encode()
    )
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_sealed(value: str, *, install_key_id: str, install_secret: str, request_id: str) -> str:
    if not value.startswith(PREFIX):
        raise NotYours("not a sealed key")
    raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode())
    try:
        plain = _aead(install_secret, install_key_id).decrypt(
            raw[:12], raw[12:], request_id.encode()
        )
    except InvalidTag:
        raise NotYours("sealed for another install or request") from None
    return plain.decode()
