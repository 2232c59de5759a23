"""Plug blastune's thread limits into the engines that run many jobs: Dask
(``blastune.integrations.dask``).

Slurm job scripts live in ``blastune.slurm``; joblib needs no glue (see docs/cluster.md).
Each integration imports its engine only when used, so a missing optional extra is one clear error.
"""

from blastune.errors import BlastuneError


class MissingExtraError(BlastuneError, ImportError):
    """An optional engine is not installed. Also an ImportError, so the usual
    ``try: from blastune.integrations.dask import limit_workers / except ImportError:`` works."""


def missing_extra(integration: str, engine: str, extra: str, exc: ImportError) -> MissingExtraError:
    """One line: what is missing (or failed to import) and the pip command that installs it."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        why = f"{exc.name} is not installed"
    else:  # installed but broken (dask and distributed at mismatched versions): say what failed
        why = "importing it failed: " + " ".join(str(exc).split())
    return MissingExtraError(
        f"{integration} needs {engine} ({why}): pip install 'blastune[{extra}]'", name=exc.name
    )
