"""Write a new Alembic revision for a service by comparing its tables with its migrations.

    .venv/bin/python scripts/new_migration.py risk "add sightings"

Review the file it writes: autogenerate is a draft, not a verdict.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parent.parent


def main(service: str, message: str) -> None:
    package = "gateway" if service == "gateway" else f"services.{service}"
    tables = importlib.import_module(f"{package}.adapters.tables")
    versions = ROOT.joinpath(*package.split("."), "adapters", "migrations", "versions")
    versions.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / "common" / "alembic"))
    cfg.set_main_option("version_locations", str(versions))
    cfg.set_main_option("path_separator", "os")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/draft.db")
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            cfg.attributes["target_metadata"] = tables.metadata
            command.upgrade(cfg, "head")
            command.revision(cfg, message=message, autogenerate=True, version_path=str(versions))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
