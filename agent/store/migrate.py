"""Alembic migrations, run on start and by `campwatch db upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from agent.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to `revision`; returns the revision it is at afterwards."""
    config = _config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"migrating {url} failed: {str(exc).splitlines()[0]}") from None
    return current_revision(engine)


def require_current(engine: Engine) -> str | None:
    """For readers (reports, review, notebooks), which never migrate: the revision when the
    database is at the head, else one StoreError saying to run `campwatch db upgrade`."""
    url = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read {url}: {str(exc).splitlines()[0]}") from None
    head = head_revision()
    if current != head:
        found = f"revision {current}" if current else "no campwatch schema"
        raise StoreError(f"{url} has {found}; this campwatch reads revision {head}. Run `campwatch db upgrade` "
                         "(with write access) or let the agent start once; reports never migrate.")
    return current
