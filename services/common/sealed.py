"""Column types that keep personal values out of the database in clear.

``FixedSealed`` stores a value (a phone number) as its deterministic AES-SIV
ciphertext under the key of the engine's vault (:func:`services.common.vault.attach`):
equality, ``IN``, joins, uniqueness and ``INSERT ... SELECT`` copies work on the
ciphertext, and the value comes back in clear to the code that reads it (to dial
it). Order comparisons are on the ciphertext: consistent, not numeric.

A clear value written by an older version (before its migration's re-seal ran) reads
back as it is, so nothing breaks half-way; :func:`reseal_clear` rewrites such rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.vault import Vault, of_dialect

#: The ``s1.`` prefix and the base64 of a 16-byte tag and a value of up to 30 bytes.
FIXED_LENGTH = 64


class FixedSealed(sa.TypeDecorator[str]):
    impl = sa.String(FIXED_LENGTH)
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return of_dialect(dialect).seal_fixed(value, purpose=self.purpose)

    def sealer(self, dialect: sa.Dialect) -> Callable[[str], str]:
        """``process_bind_param`` of a value known not to be None, for many values at once
        (``services.common.bulk``): the vault's seal, without the type's layers per value."""
        seal_fixed = of_dialect(dialect).seal_fixed
        purpose = self.purpose

        def seal(value: str) -> str:
            return seal_fixed(value, purpose=purpose)

        return seal

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        text = str(value)
        if not Vault.is_fixed_sealed(text):
            return text  # written in clear by an older version, not yet re-sealed
        return of_dialect(dialect).open_fixed(text, purpose=self.purpose)


async def reseal_clear(conn: AsyncConnection, column: sa.Column[Any], *, batch: int = 1000) -> int:
    """Rewrite the values of a ``FixedSealed`` column still in clear; returns how many rows.

    Reads the raw text (not through the type), then updates each distinct clear value
    to its sealed form, so primary-key columns move too.
    """
    column_type = column.type
    assert isinstance(column_type, FixedSealed)
    raw = sa.type_coerce(column, sa.String)
    vault = of_dialect(conn.dialect)
    done = 0
    while True:
        values = (
            (await conn.execute(sa.select(raw).where(raw.not_like("s1.%")).distinct().limit(batch)))
            .scalars()
            .all()
        )
        if not values:
            return done
        for value in values:
            sealed = vault.seal_fixed(str(value), purpose=column_type.purpose)
            result = await conn.execute(
                sa.update(column.table)
                .where(raw == value)
                .values({column.name: sa.literal(sealed, sa.String)})
            )
            done += int(result.rowcount)
