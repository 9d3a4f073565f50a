"""The identity service's vault: the shared one (:mod:`services.common.vault`)."""

from services.common.vault import Vault, VaultError

__all__ = ["Vault", "VaultError"]
