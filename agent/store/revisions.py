"""Whether a database is already at the newest migration, decided without importing Alembic.

Alembic (with Mako and Pygments) weighs about 11 MiB resident; the agent only needs it when there is
something to migrate. The head is read from the revision files themselves (`revision = '...'` and
`down_revision = ...` lines, as Alembic writes them); anything unusual (several heads, a merge, an
unreadable file) answers "not known to be at head", and the caller runs the real migration."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

VERSIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(None|['\"]([^'\"]+)['\"])\s*$", re.M)


@lru_cache(maxsize=1)
def file_head() -> str | None:
    """The single head revision the migration files define, or None when that is not plain."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(VERSIONS.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def at_head(engine: Engine) -> bool:
    """True only when the database records exactly the head revision (one alembic_version row)."""
    head = file_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False  # no table yet, or unreachable: the real migration reports it
    return [row[0] for row in rows] == [head]
