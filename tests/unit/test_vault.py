"""The shared crypto vault: AES-GCM bound to its place, key rotation, the keyed index, the
fixed (AES-SIV) seal, key loading apart from the data, file modes."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.common import keys
from services.common.files import private_dir, private_file
from services.common.keys import KeyConfigError, KeyRing
from services.common.vault import Vault, VaultError

ID = "11010519491231002X"


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_sealed_value_opens_in_its_place_and_hides_the_plaintext() -> None:
    vault = Vault(KeyRing.generate())
    sealed = vault.seal(ID, place="users.id_number:u1")
    assert ID.encode() not in sealed
    assert vault.open(sealed, place="users.id_number:u1") == ID


def test_sealing_twice_gives_different_ciphertexts() -> None:
    vault = Vault(KeyRing.generate())
    assert vault.seal(ID, place="p") != vault.seal(ID, place="p")


def test_a_ciphertext_moved_to_another_row_or_column_does_not_open() -> None:
    vault = Vault(KeyRing.generate())
    sealed = vault.seal(ID, place="users.id_number:u1")
    with pytest.raises(VaultError):
        vault.open(sealed, place="users.id_number:u2")
    with pytest.raises(VaultError):
        vault.open(sealed, place="users.name:u1")


def test_a_tampered_ciphertext_does_not_open() -> None:
    vault = Vault(KeyRing.generate())
    sealed = bytearray(vault.seal(ID, place="p"))
    sealed[-1] ^= 1
    with pytest.raises(VaultError):
        vault.open(bytes(sealed), place="p")


def test_rotation_the_first_key_seals_every_key_opens() -> None:
    old = KeyRing.generate("k1")
    old_vault = Vault(old)
    sealed_before = old_vault.seal(ID, place="p")
    new_key = os.urandom(32)
    rotated = Vault(KeyRing((("k2", new_key), *old.data_keys), old.index_key))
    assert rotated.open(sealed_before, place="p") == ID
    sealed_after = rotated.seal(ID, place="p")
    assert Vault.key_id_of(sealed_after) == "k2"
    assert Vault.key_id_of(sealed_before) == "k1"
    with pytest.raises(VaultError, match="not configured"):
        old_vault.open(sealed_after, place="p")


def test_the_index_is_keyed_and_separates_fields() -> None:
    ring = KeyRing.generate()
    vault = Vault(ring)
    same = Vault(KeyRing(ring.data_keys, ring.index_key))
    other = Vault(KeyRing(ring.data_keys, os.urandom(32)))
    assert vault.index("id_number", ID) == same.index("id_number", ID)
    # Without the key, enumerating ID numbers through their index is not possible.
    assert vault.index("id_number", ID) != other.index("id_number", ID)
    assert vault.index("id_number", ID) != vault.index("phone", ID)
    assert vault.index("id_number", ID) != hashlib.sha256(ID.encode()).hexdigest()


def test_keys_from_settings() -> None:
    k1, k2, index = os.urandom(32), os.urandom(32), os.urandom(32)
    ring = keys.load(f"k2:{_b64(k2)}, k1:{_b64(k1)}", _b64(index), Path("/nonexistent"))
    assert ring.data_keys == (("k2", k2), ("k1", k1))
    assert ring.index_key == index
    assert "k2" in repr(ring)
    assert _b64(k2) not in repr(ring)


@pytest.mark.parametrize(
    ("data", "index", "message"),
    [
        ("k1:notbase64!!", "", "both"),
        ("k1:" + _b64(os.urandom(16)), _b64(os.urandom(32)), "32 bytes"),
        ("k1", _b64(os.urandom(32)), "<id>:<base64 key>"),
        ("k1:" + _b64(b"x" * 32) + ",k1:" + _b64(b"y" * 32), _b64(os.urandom(32)), "unique"),
        ("k1:" + _b64(b"x" * 32), "!!!", "base64"),
    ],
)
def test_bad_key_settings_are_refused_without_echoing_them(
    data: str, index: str, message: str
) -> None:
    with pytest.raises(KeyConfigError, match=message) as raised:
        keys.load(data, index, Path("/nonexistent"))
    assert data not in str(raised.value)
    assert not index or index not in str(raised.value)


KEYS_FILE = "identity.keys"


def test_keys_are_generated_once_into_the_keys_dir_with_mode_0600(tmp_path: Path) -> None:
    data, key_dir = tmp_path / "data", tmp_path / "keys"
    with capture_logs() as logs:
        first = keys.load("", "", data, keys_dir=key_dir)
    path = key_dir / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert not (data / KEYS_FILE).exists()
    assert [e["event"] for e in logs if "generated" in e["event"]]
    # The log line names the file and the key ids, never the keys.
    for key_id, key in first.data_keys:
        assert all(_b64(key) not in str(e) for e in logs)
        assert any(key_id in str(e) for e in logs)
    with capture_logs() as logs:
        again = keys.load("", "", data, keys_dir=key_dir)
    assert again == first
    assert not logs


def test_a_keys_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    with capture_logs():
        keys.load("", "", tmp_path, keys_dir=tmp_path / "keys")
    (tmp_path / "keys" / KEYS_FILE).chmod(0o644)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        keys.load("", "", tmp_path, keys_dir=tmp_path / "keys")


def test_a_key_file_left_in_the_data_dir_moves_to_the_keys_dir(tmp_path: Path) -> None:
    data, key_dir = tmp_path / "data", tmp_path / "keys"
    with capture_logs() as logs:
        old = keys.load_or_create(data / KEYS_FILE)
        moved = keys.load("", "", data, keys_dir=key_dir)
    assert any("moved" in e["event"] for e in logs)
    assert moved == old
    assert not (data / KEYS_FILE).exists()
    assert stat.S_IMODE((key_dir / KEYS_FILE).stat().st_mode) == 0o600


def test_each_service_has_its_own_keys(tmp_path: Path) -> None:
    with capture_logs():
        report = keys.load("", "", tmp_path, service="report", keys_dir=tmp_path / "keys")
        warning = keys.load("", "", tmp_path, service="warning", keys_dir=tmp_path / "keys")
    assert report != warning
    assert (tmp_path / "keys" / "report.keys").exists()
    with pytest.raises(KeyConfigError, match="ANTIFRAUD_REPORT_DATA_KEYS"):
        keys.load("k1:" + _b64(os.urandom(32)), "", tmp_path, service="report")


def test_the_fixed_seal_is_deterministic_opens_and_hides_the_value() -> None:
    vault = Vault(KeyRing.generate())
    phone = "+8613800138000"
    sealed = vault.seal_fixed(phone, purpose="phone")
    assert sealed == vault.seal_fixed(phone, purpose="phone")
    assert "13800138000" not in sealed
    assert len(sealed) <= 64
    assert sealed != vault.seal_fixed(phone, purpose="other")
    assert vault.open_fixed(sealed, purpose="phone") == phone
    with pytest.raises(VaultError):
        vault.open_fixed(sealed, purpose="other")
    with pytest.raises(VaultError):
        Vault(KeyRing.generate()).open_fixed(sealed, purpose="phone")


def test_reseal_moves_a_value_to_the_current_key() -> None:
    old = KeyRing.generate("k1")
    new = KeyRing((("k2", os.urandom(32)), *old.data_keys), old.index_key)
    sealed = Vault(old).seal("x", place="p:1")
    moved = Vault(new).reseal(sealed, place="p:1")
    assert Vault.key_id_of(moved) == "k2"
    assert Vault(new).open(moved, place="p:1") == "x"


def test_private_files_and_dirs_are_owner_only_and_narrowed(tmp_path: Path) -> None:
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    wide.chmod(0o755)
    (wide / "x.db").write_bytes(b"")
    (wide / "x.db").chmod(0o644)
    private_file(wide / "x.db")
    assert stat.S_IMODE(wide.stat().st_mode) == 0o700
    assert stat.S_IMODE((wide / "x.db").stat().st_mode) == 0o600
    made = private_file(tmp_path / "new" / "y.db")
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_dir(tmp_path / "new").stat().st_mode) == 0o700


def test_remembered_fixed_seals_are_the_seals() -> None:
    """A number sealed or opened once is remembered: the same ciphertext as a vault that
    never saw it, per purpose, and the memory is bounded."""
    ring = KeyRing.generate()
    vault, fresh = Vault(ring), Vault(ring)
    sealed = vault.seal_fixed("+8613800000001", purpose="warning.phone")
    assert vault.seal_fixed("+8613800000001", purpose="warning.phone") == sealed
    assert fresh.seal_fixed("+8613800000001", purpose="warning.phone") == sealed
    assert vault.seal_fixed("+8613800000001", purpose="other") != sealed
    opened = Vault(ring)
    assert opened.open_fixed(sealed, purpose="warning.phone") == "+8613800000001"
    assert opened.seal_fixed("+8613800000001", purpose="warning.phone") == sealed
    for i in range(20_000):
        vault.seal_fixed(f"+86139{i:08d}", purpose="warning.phone")
    assert vault.seal_fixed("+8613800000001", purpose="warning.phone") == sealed
    assert len(vault._fixed) <= 8192
