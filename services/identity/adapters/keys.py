"""The identity service's keys: the shared key ring (:mod:`services.common.keys`).

``ANTIFRAUD_IDENTITY_DATA_KEYS`` and ``ANTIFRAUD_IDENTITY_INDEX_KEY``, else generated
once into ``<keys dir>/identity.keys`` (``ANTIFRAUD_KEYS_DIR``, default ``var/keys``).
"""

from services.common.keys import (
    KEY_BYTES,
    KeyConfigError,
    KeyRing,
    from_settings,
    load,
    load_or_create,
    parse_data_keys,
)

KEYS_FILE = "identity.keys"

__all__ = [
    "KEYS_FILE",
    "KEY_BYTES",
    "KeyConfigError",
    "KeyRing",
    "from_settings",
    "load",
    "load_or_create",
    "parse_data_keys",
]
