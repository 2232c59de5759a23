"""Results files of a measurement -- sweep or jobs -- as their typed models: the one loader for the
readers that take either (``compare``, ``plot``, ``recommend``)."""

from __future__ import annotations

from blastune.documents.jobs import JobsResult
from blastune.documents.load import load_results
from blastune.documents.sweep import SweepDocument
from blastune.errors import BlastuneError

_MODELS = {"sweep": SweepDocument, "jobs": JobsResult}


def measured_model(data: dict, source: str, reader: str):
    """A sweep or jobs document (as ``load_results`` returns it) as (kind, typed model): what
    compare, plot and recommend read. Any other kind is one line naming what ``reader`` takes."""
    schema = data.get("schema") if isinstance(data, dict) else None
    kind = str(schema or "").partition("/")[0].removeprefix("blastune.")
    if kind in _MODELS:
        return kind, _MODELS[kind].from_dict(data, source)
    where = f"{source}: " if source else ""
    raise BlastuneError(
        f"{where}holds {kind or 'unknown'} results; {reader} reads sweep or jobs results"
    )


def load_measured(path, reader: str):
    """``measured_model`` of the file at ``path``."""
    return measured_model(load_results(path, None, 1), str(path), reader)
