"""Saved documents: versioned JSON ("blastune.<kind>/<version>") read back with one clear error."""

from __future__ import annotations

import json
from pathlib import Path

from blastune.core.files import read_capped
from blastune.documents.base import unsupported_schema
from blastune.errors import BlastuneError


def load_results(path: str | Path, kind: str | None = None, major: int | None = None) -> dict:
    """Read a results file back; a missing, corrupt or foreign file is one clear error."""
    path = Path(path)
    try:
        text = read_capped(path).decode("utf-8")  # capped: `compare /dev/zero` ends in one line
    except UnicodeDecodeError as exc:
        raise _foreign(path, f"not UTF-8 text at byte {exc.start}") from None
    except IsADirectoryError:
        raise BlastuneError(f"{path}: is a directory, not a results file") from None
    except FileNotFoundError:
        raise BlastuneError(f"{path}: no such file") from None
    except OSError as exc:
        raise BlastuneError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _foreign(path, f"invalid JSON at line {exc.lineno}") from None
    except RecursionError:
        raise _foreign(path, "nested too deeply") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith("blastune."):
        raise _foreign(path, "no 'schema' field")
    name = schema.partition("/")[0]
    if kind is not None and name != f"blastune.{kind}":
        raise BlastuneError(
            f"{path}: holds {name.removeprefix('blastune.')} results, expected {kind}"
        )
    why = unsupported_schema(schema, major) if major is not None else None
    if why:
        raise BlastuneError(f"{path}: {why}")
    return data


def _foreign(path: Path, why: str) -> BlastuneError:
    return BlastuneError(f"{path}: not a blastune results file ({why})")
