"""Private look-ups: hash prefixes for buckets, an OPRF on edwards25519 for tags.

The caller sends, per listed form of its value, the bucket prefix (16 bits of a public hash)
and a blinded point r*H(form). The service answers k*(r*H(form)) and, for every listed entry
of the bucket, a tag derived from k*H(entry) with its key k of the epoch. The caller
unblinds (r^-1) to k*H(form), derives its own tag and compares: only tags it could compute
with the service's help match, so the list cannot be read out of answers offline, and the
service sees a random point and 16 bits. The threat model and the k-anonymity achieved are
in the proto (``HashPrefixQuery``) and ``services/risk/README.md``.

libsodium (PyNaCl) does the group operations: hash to the curve (Elligator 2, cofactor
cleared), scalar multiplication without clamping, scalar inversion.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection

from nacl import bindings as sodium

from services.common.indicators import IndicatorKind

PREFIX_BYTES = 2  # 16 bits: 65,536 buckets per kind
POINT_BYTES = 32
TAG_BYTES = 16
#: Every bucket is answered with at least this many entries, and a power of two.
MIN_BUCKET = 8
#: A day: tags of two epochs cannot be linked.
EPOCH_SECONDS = 86_400
_BUCKET = b"antifraud-bucket-v1\x1f"
_POINT = b"antifraud-point-v1\x1f"
_TAG = b"antifraud-tag-v1\x1f"
_KEY = b"antifraud-private-lookup-v1\x1f"


_DIGEST = type(hashlib.sha256()).digest


class BadPoint(ValueError):
    """Not a point of the group (or a point of small order)."""


def _form(kind: IndicatorKind | int, value: str) -> bytes:
    return f"{int(kind)}\x1f{value}".encode()


def bucket_hash(kind: IndicatorKind | int, value: str) -> bytes:
    """The full public hash of a form: it never leaves the caller (reversible by enumeration)."""
    return hashlib.sha256(_BUCKET + _form(kind, value)).digest()


def bucket_prefix(kind: IndicatorKind | int, value: str) -> bytes:
    """The public bucket of a listed form: what the service learns of a private look-up."""
    return bucket_hash(kind, value)[:PREFIX_BYTES]


def hash_to_point(kind: IndicatorKind | int, value: str) -> bytes:
    uniform = hashlib.sha512(_POINT + _form(kind, value)).digest()[:POINT_BYTES]
    point: bytes = sodium.crypto_core_ed25519_from_uniform(uniform)
    return point


def multiply(scalar: bytes, point: bytes) -> bytes:
    try:
        found: bytes = sodium.crypto_scalarmult_ed25519_noclamp(scalar, point)
    except Exception as exc:  # libsodium refuses points not on the curve or of small order
        raise BadPoint("not a valid point") from exc
    return found


def random_scalar() -> bytes:
    scalar: bytes = sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))
    return scalar


def tag_of(evaluated: bytes) -> bytes:
    """The tag of an evaluated point k*H(form): what the answer lists and the caller compares."""
    return hashlib.sha256(_TAG + evaluated).digest()[:TAG_BYTES]


def epoch_of(now: float) -> int:
    return int(now) // EPOCH_SECONDS


def epoch_key(master: bytes, epoch: int) -> bytes:
    """The service's scalar for an epoch, derived from a key every replica holds."""
    wide = hmac.new(master, _KEY + str(epoch).encode(), hashlib.sha512).digest()
    scalar: bytes = sodium.crypto_core_ed25519_scalar_reduce(wide)
    return scalar


def padded_size(count: int) -> int:
    """The size a bucket of ``count`` entries is answered with: at least MIN_BUCKET, a power
    of two, so its size says little about how many entries it holds."""
    size = MIN_BUCKET
    while size < count:
        size *= 2
    return size


class Blinded:
    """One form of a value, blinded by the caller for a private look-up."""

    def __init__(self, kind: IndicatorKind, value: str) -> None:
        self.kind = kind
        self.value = value
        self.prefix = bucket_prefix(kind, value)
        self._r = random_scalar()
        self.point = multiply(self._r, hash_to_point(kind, value))

    def tag(self, evaluated: bytes) -> bytes:
        """The tag of this form, from the service's evaluation of the blinded point."""
        inverse: bytes = sodium.crypto_core_ed25519_scalar_invert(self._r)
        return tag_of(multiply(inverse, evaluated))


class Buckets:
    """Listed forms by (kind, bucket prefix), kept as entries come and go (the service's)."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[int, bytes], set[str]] = {}

    def add(self, kind: int, value: str) -> None:
        self._buckets.setdefault((kind, bucket_prefix(kind, value)), set()).add(value)

    def add_many(self, kind: int, values: list[str]) -> None:
        """``add`` for each value, the hashing in C loops (``bucket_prefix`` of each)."""
        head = _BUCKET + f"{int(kind)}\x1f".encode()
        hashes = map(_DIGEST, map(hashlib.sha256, map(head.__add__, map(str.encode, values))))
        buckets = self._buckets
        for digest, value in zip(hashes, values, strict=True):
            key = (kind, digest[:PREFIX_BYTES])
            found = buckets.get(key)
            if found is None:
                buckets[key] = {value}
            else:
                found.add(value)

    def track(self, kind: int, value: str, *, listed: bool) -> None:
        """A value was listed or is no longer."""
        if listed:
            self.add(kind, value)
        else:
            self.remove(kind, value)

    def remove(self, kind: int, value: str) -> None:
        key = (kind, bucket_prefix(kind, value))
        found = self._buckets.get(key)
        if found is not None:
            found.discard(value)
            if not found:
                del self._buckets[key]

    def members(self, kind: int, prefix: bytes) -> Collection[str]:
        return sorted(self._buckets.get((kind, prefix), ()))


class TagCache:
    """Tags of listed forms under the key of the current epoch (the service's): a hot bucket
    costs one scalar multiplication per entry per epoch, not per look-up."""

    def __init__(self, master: bytes, limit: int = 500_000) -> None:
        self._master = master
        self._limit = limit
        self._epoch = -1
        self.key = b""
        self._tags: dict[tuple[int, str], bytes] = {}

    def at(self, now: float) -> None:
        epoch = epoch_of(now)
        if epoch != self._epoch:
            self._epoch = epoch
            self.key = epoch_key(self._master, epoch)
            self._tags.clear()

    def tag(self, kind: int, value: str) -> bytes:
        found = self._tags.get((kind, value))
        if found is None:
            if len(self._tags) >= self._limit:
                self._tags.clear()
            found = self._tags[(kind, value)] = tag_of(
                multiply(self.key, hash_to_point(kind, value))
            )
        return found
