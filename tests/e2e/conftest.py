"""One deployment per database for the system tests that only use it.

Starting the deployment topology (eight processes) is most of a system test module's
time, so the modules that neither reconfigure it nor need it to themselves share one,
started once per backend for the session: pytest runs every test of one backend, then
stops that deployment and starts the next. The tests were written to share already:
against a remote deployment (``ANTIFRAUD_E2E_GATEWAY``) they all meet one, so each makes
its own citizens, keys and numbers and reads only what it made. A module that needs a
deployment of its own (other settings, every log line to itself) defines its own
``suite`` fixture, which takes precedence over this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.deployment import SUITE_PARAMS, Deployment, deployment


@pytest.fixture(scope="session", params=SUITE_PARAMS)
async def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    data_dir = tmp_path_factory.mktemp(f"system-{request.param}")
    async with deployment(request.param, data_dir) as found:
        yield found
