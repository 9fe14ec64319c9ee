"""Reading a data file a user may put in place of the bundled one (GPU fields, GPU peak figures)."""

from __future__ import annotations

from pathlib import Path

from agent.errors import FieldSpecError, Problem


def read_data_file(path: str | Path | None, bundled: Path, what: str) -> tuple[str, str]:
    """The text of `path` (of `bundled` when None or empty) and the file's name to report problems by.

    Raises FieldSpecError naming the file when it cannot be read ("cannot read `what`") or is not
    UTF-8 text."""
    file = Path(path) if path else bundled
    try:
        return file.read_text(encoding="utf-8"), str(file)
    except OSError as exc:
        raise FieldSpecError(str(file), [Problem(str(file), f"cannot read {what}: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise FieldSpecError(str(file), [Problem(str(file), "expected a UTF-8 text file")]) from None
