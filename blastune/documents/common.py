"""What several documents share: the names a point may carry, the machine fingerprint, the settings.

The documents layer sits below ``measure``, so it cannot import ``measure.ops``; the names are
written out here, and ``tests/test_documents_valid.py`` holds them equal to ``measure.ops`` (an op
added there and not here fails that test, not a user's ``--resume``).
"""

from __future__ import annotations

from blastune.documents.base import Fields

# measure.ops.OPS, DTYPES and LIBS: what blastune can have measured (the test keeps them equal)
OP_NAMES = (
    "dot",
    "inv",
    "det",
    "solve",
    "cholesky",
    "qr",
    "svd",
    "svdvals",
    "eigh",
    "add",
    "sin",
    "norm_isf",
)
DTYPES = ("float32", "float64", "complex64", "complex128")
LIBS = ("numpy", "scipy")
ISOLATE_CHOICES = ("auto", "always", "never")
MAX_REPEATS = 1000  # measure.timing.MAX_REPEATS: samples per point at most
# a seed is what numpy's SeedSequence-free legacy generators take: 0 .. 2**32 - 1 (sweep's rule)
MAX_SEED = 2**32 - 1


def check_fingerprint(f: Fields, id_required: bool = False) -> dict:
    """The machine a document was measured on. Readers compare these fields with this machine's,
    and divide cores among jobs by ``usable_cores``: a hand-edited one is refused, not replaced."""
    f.str("id") if id_required else f.str("id", None)
    for name in ("cpu_model", "machine", "simd"):
        f.str(name, None)
    f.threads("usable_cores", None)
    f.items("libraries", None)
    return f.data


def check_settings(f: Fields) -> dict:
    """A sweep's settings (``measure.sweep.entry.check_settings`` made them): the same bounds."""
    budget = f.seconds("budget_s", None)
    if budget is not None and budget <= 0:
        f.fail(f"expected a number of seconds > 0, got {budget!r}", "budget_s")
    f.count("min_repeats", None, lo=1, hi=MAX_REPEATS)
    spread = f.number("target_spread", None, lo=0, hi=1)
    if spread is not None and spread <= 0:
        f.fail(f"expected a fraction between 0 and 1, got {spread!r}", "target_spread")
    f.count("seed", None, lo=0, hi=MAX_SEED)
    f.str("isolate", None, choices=ISOLATE_CHOICES)
    f.str("timer", None)
    f.count("warmups", None, lo=0, hi=MAX_REPEATS)
    return f.data
