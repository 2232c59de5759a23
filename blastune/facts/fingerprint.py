"""The fingerprint of a measurement: the CPU, the cores we may use and the BLAS libraries loaded.

Every saved document carries one, so later commands (compare, recommend, env --auto) can tell a
result from this machine from a foreign one.
"""

from __future__ import annotations

import hashlib
import json


def fingerprint(cpu=None, libraries=None) -> dict:
    """What a measurement depends on: the CPU, the cores we may use, and the BLAS libraries
    loaded."""
    from blastune.facts.cpu import cpu_info
    from blastune.facts.detect import inventory

    cpu = cpu or cpu_info()
    libs = inventory() if libraries is None else libraries
    fp = {
        "cpu_model": cpu.model,
        "machine": cpu.machine,
        "simd": cpu.simd,
        "usable_cores": cpu.usable_cores,
        "libraries": sorted(
            f"{lib.vendor} {lib.version or '?'} {lib.threading_layer or '?'}"
            for lib in libs
            if lib.api != "openmp"
        ),
    }
    fp["id"] = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
    return fp
