"""The gateway's key store through a PostgreSQL that refuses, then black-holes: keys found
lately are still honoured (stale if error, within its bound); others are UNAVAILABLE."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.adapters import keystore
from gateway.adapters.keystore import KeyStore
from gateway.bootstrap import VERSIONS
from services.common.db import Database
from services.common.errors import infrastructure_error
from services.common.principals import Role
from tests import harness
from tests.tcp_proxy import Proxy

pytestmark = pytest.mark.postgres


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[Proxy, Database]]:
    if not harness.postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {harness.PG_URL}")
    host_port = harness.PG_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    proxy = Proxy((host, int(port or 5432)))
    await proxy.start()
    schema = harness.new_schema("keys")
    url = harness.PG_URL.replace(host_port, f"127.0.0.1:{proxy.port}")
    db = Database("gateway", url=url, schema=schema)
    try:
        await db.migrate(VERSIONS)
        yield proxy, db
    finally:
        await proxy.close()
        await db.dispose()
        await harness.drop_schema(schema)


async def test_keys_seen_lately_survive_a_key_store_outage(
    proxied: tuple[Proxy, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, db = proxied
    store = KeyStore(db, ttl_seconds=0.0, stale_seconds=600.0)
    seen = await store.create(Role.BANK, "bank-icbc")
    found = await store.find(seen.key_id)
    assert found is not None
    assert found.subject == "bank-icbc"
    for fault in (proxy.refuse, proxy.blackhole):
        unseen = await store.create(Role.BANK, "bank-abc")
        await fault()
        # Found lately: still honoured, though the store cannot be asked.
        again = await store.find(seen.key_id)
        assert again == found, fault
        # Never found here: the store must tell, and cannot.
        with pytest.raises(Exception) as caught:
            await store.find(unseen.key_id)
        assert infrastructure_error(caught.value) is not None, caught.value
        # Found too long ago: the bound holds.
        monkeypatch.setattr(store, "stale", 0.0)
        with pytest.raises(Exception) as caught:
            await store.find(seen.key_id)
        assert infrastructure_error(caught.value) is not None, caught.value
        monkeypatch.setattr(store, "stale", 600.0)
        await proxy.forward()
        # Back: read from the store again, the new key too.
        assert await store.find(seen.key_id) == found
        assert await store.find(unseen.key_id) is not None
        await store.find(seen.key_id)  # the entry is fresh again before the next fault
    # Waiting for a fresh entry is shorter than a black-holed store takes to fail.
    assert db.connect_timeout + db.statement_timeout > keystore.STALE_WAIT_SECONDS
