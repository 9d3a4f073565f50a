"""A key issued to an install is kept sealed under that install key's secret."""

from __future__ import annotations

import pytest

from gateway.domain import key_sealing
from gateway.domain.principals import new_key


def test_only_the_install_that_asked_opens_the_key_it_was_issued() -> None:
    install, other = new_key(), new_key()
    issued = new_key().token
    sealed = key_sealing.seal(
        issued, install_key_id=install.key_id, install_secret=install.secret, request_id="r-1"
    )
    assert issued not in sealed
    opened = key_sealing.open_sealed(
        sealed, install_key_id=install.key_id, install_secret=install.secret, request_id="r-1"
    )
    assert opened == issued
    for key_id, secret, request_id in (
        (other.key_id, other.secret, "r-1"),  # another install
        (install.key_id, install.secret, "r-2"),  # another request
        (install.key_id, other.secret, "r-1"),  # the id without its secret
    ):
        with pytest.raises(key_sealing.NotYours):
            key_sealing.open_sealed(
                sealed, install_key_id=key_id, install_secret=secret, request_id=request_id
            )
    with pytest.raises(key_sealing.NotYours):
        key_sealing.open_sealed(
            issued, install_key_id=install.key_id, install_secret=install.secret, request_id="r-1"
        )
