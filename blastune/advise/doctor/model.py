"""The Context every doctor check reads (the Finding and the report are ``documents.doctor``'s).

Checks (``checks.py``) and the runner (``report.py``) both stand on this module, never on each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from blastune.advise.doctor.probe import ProbeResult
from blastune.facts.cpu import CpuInfo
from blastune.facts.environment import requested_threads
from blastune.facts.info import library_label
from blastune.facts.schedstat import Pressure
from blastune.facts.topology import Topology
from blastune.core.counts import per_job


@dataclass
class Context:
    """Everything the checks read. Built once; checks never probe the system themselves."""

    jobs: int
    env: Mapping[str, str]
    cpu: CpuInfo
    cpu_flags: set[str]
    loaded: list = field(default_factory=list)  # LibraryInfo of every BLAS/OpenMP lib loaded here
    bindings: list = field(default_factory=list)  # detect.Binding: what numpy/scipy call
    probe: ProbeResult | None = None
    notes: list[str] = field(default_factory=list)
    pressure: Pressure | None = None  # /proc/pressure/cpu when the context was built (None: no PSI)
    pressure_now_pct: float | None = None  # PSI "some" over the doctor's own run, in percent
    pressure_window_s: float | None = None  # how long that run was
    topology: Topology | None = None  # the CPUs this process may use (None: unreadable)

    @property
    def blas_libs(self):
        return [lib for lib in self.loaded if lib.api != "openmp"]

    @property
    def omp_libs(self):
        return [lib for lib in self.loaded if lib.api == "openmp"]

    def label(self, lib) -> str:
        """'openblas (libopenblas.so, called by numpy)': how a finding names a library."""
        return library_label(lib, self.bindings, short=True)

    # --- one truth about the CPUs, for every check ---------------------------------------------
    # CpuInfo counts the machine (/proc/cpuinfo) and narrows only the logical CPUs (affinity,
    # quota); the topology narrows cores too (a cpuset of 12 of 128 CPUs holds 6 of the 64 cores).
    # Checks read these properties, never ``cpu.physical_cores`` or ``cpu.usable_cores``
    # directly, so no two findings count the cores differently.

    @property
    def captured(self) -> bool:
        """The topology comes from a captured tree (BLASTUNE_SYSFS_ROOT): it describes the CPUs, and
        the libraries loaded here (which describe this machine) do not count the threads."""
        return self.topology is not None and self.topology.source != "/"

    @property
    def usable_cores(self) -> int:
        """The logical CPUs this process may use: affinity mask, cgroup cpuset and CPU quota."""
        t = self.topology
        if t is None:
            return self.cpu.usable_cores
        if self.captured:
            return len(t.cpus)
        return min(self.cpu.usable_cores, len(t.cpus))  # a cgroup quota (CpuInfo) can be tighter

    @property
    def usable_basis(self) -> str:
        t = self.topology
        if t is not None and (self.captured or len(t.cpus) < self.cpu.usable_cores):
            return "; ".join(t.limited_by) or "logical cores"
        return self.cpu.usable_basis

    @property
    def machine_cpus(self) -> int:
        """The machine's logical CPUs, usable or not."""
        return len(self.topology.machine_cpus) if self.captured else self.cpu.logical_cores

    @property
    def physical_cores(self) -> int:
        """The physical cores this process may use (a core counts if any of its SMT siblings is
        usable), never more than the usable CPUs: a quota of 8 CPUs runs at most 8 cores at once."""
        t = self.topology
        cores = t.physical_cores if t is not None else self.cpu.physical_cores
        return min(cores, self.usable_cores)

    @property
    def smt(self) -> bool:
        """Does some usable core offer more than one usable CPU (SMT siblings)?"""
        if self.topology is not None:
            return self.topology.smt > 1
        return self.cpu.smt and self.physical_cores < self.usable_cores

    def job_threads(self) -> tuple[int, str]:
        """The BLAS threads one job of this environment runs, and where that number comes from --
        the one count every check uses.

        Here, a loaded library's own count is the truth (it already read the variables); on a
        captured tree the loaded libraries describe this machine, so the variables come first.
        Without either, the BLAS default: one thread per usable CPU."""
        libs = [lib for lib in self.blas_libs if lib.num_threads]
        from_libs = []
        if libs and not self.captured:
            lib = max(libs, key=lambda lib: lib.num_threads)
            from_libs = [(lib.num_threads, self.label(lib))]
        n, var = requested_threads(self.env)  # the vendor registry's variables, in their precedence
        from_env = [(n, f"{var}={self.env[var]}")] if n else []
        for found in (*from_libs, *from_env):
            return found
        n = self.usable_cores
        return n, f"the BLAS default of one thread per usable CPU ({n})"

    @property
    def fair_share(self) -> int:
        """The BLAS threads each of ``jobs`` jobs may run without oversubscribing the usable CPUs
        (at least 1): the count a fix proposes."""
        return per_job(self.usable_cores, self.jobs)
