"""doctor's checks for big machines: NUMA nodes, SMT siblings, hybrid P/E cores, narrow affinity.

They read the topology (``blastune.facts.topology``) of the CPUs this process may use, and the thread
count one job of this environment runs. On a machine where a check's subject does not exist (one
NUMA node, no SMT, no E-cores, nothing narrowing the CPUs) it says so with an ``ok`` finding.
Listed in ``checks.CHECKS``.
"""
from __future__ import annotations

from blastune.advise.doctor.model import Context, Finding
from blastune.facts.environment import requested_threads
from blastune.facts.topology import Topology, format_cpulist, topology_or_none



def _topology(ctx: Context) -> Topology | None:
    """Read once per context (the Context of another version may carry it already)."""
    topo = getattr(ctx, "topology", None)
    if topo is None:
        cache = ctx.__dict__.setdefault("_topology_cache", [])
        if not cache:
            cache.append(topology_or_none())
        topo = cache[0]
    return topo


def job_threads(ctx: Context, topo: Topology) -> tuple[int, str]:
    """BLAS threads of one job, and where the number came from.

    On this machine a loaded library's own count is the truth; on a captured tree
    (BLASTUNE_SYSFS_ROOT) the loaded libraries describe this machine, so the variables come first.
    """
    from_libs = [(lib.num_threads, f"{lib.vendor} runs {lib.num_threads}") for lib in ctx.blas_libs
                 if lib.num_threads]
    n, var = requested_threads(ctx.env)  # the vendor registry's variables, in their precedence
    from_env = [(n, f"{var}={ctx.env[var]}")] if n else []
    order = from_env if topo.source != "/" else ([max(from_libs)] if from_libs else []) + from_env
    if order:
        return order[0]
    return len(topo.cpus), f"the BLAS default of one thread per CPU ({len(topo.cpus)})"


def _fix_pin(jobs: int) -> str:
    return f'eval "$(blastune env --jobs {jobs} --pin --job-index I)"  (one per job; see blastune layout --jobs {jobs})'


def check_numa_spread(ctx: Context) -> list[Finding]:
    cid = "numa-spread"
    topo = _topology(ctx)
    if topo is None or len(topo.numa_nodes) < 2:
        return [Finding(cid, "ok", "the CPUs this process may use are in one NUMA node", "")]
    n, source = job_threads(ctx, topo)
    if n < 2:
        return [Finding(cid, "ok", f"one BLAS thread per job ({source}): no job spans NUMA nodes", "")]
    nodes = ", ".join(f"node {d.index}: {format_cpulist(d.cpus)}" for d in topo.numa_nodes)
    biggest = max(len(d.cpus) for d in topo.numa_nodes)
    if n > biggest:
        text = (f"one job's {n} BLAS threads ({source}) cannot fit in one NUMA node (at most {biggest} CPUs; "
                f"{nodes}): every product reads part of its memory from a remote node")
        return [Finding(cid, "warning", text, _fix_pin(max(ctx.jobs, len(topo.numa_nodes))))]
    return [Finding(cid, "info", f"this process may run on {len(topo.numa_nodes)} NUMA nodes ({nodes}) and its "
                    f"{n} BLAS threads ({source}) are not pinned: the kernel may move them away from their "
                    "memory's node", _fix_pin(max(ctx.jobs, len(topo.numa_nodes))))]


def check_smt_as_cores(ctx: Context) -> list[Finding]:
    """One job (or jobs x threads) counting SMT siblings as cores: BLAS kernels already fill a core's
    FMA units, so a sibling thread only competes for them."""
    cid = "smt-as-cores"
    topo = _topology(ctx)
    if topo is None or topo.smt < 2:
        return [Finding(cid, "ok", "no SMT siblings among the CPUs this process may use", "")]
    if ctx.jobs > 1:
        return [Finding(cid, "ok", f"{ctx.jobs} jobs: checked against the physical cores by jobs-over-physical", "")]
    n, source = job_threads(ctx, topo)
    cores, cpus = topo.physical_cores, len(topo.cpus)
    if cores < n <= cpus:
        return [Finding(cid, "warning", f"{n} BLAS threads ({source}): more than the {cores} physical cores -- "
                        f"the {cpus} CPUs count SMT siblings, which share a core's FMA units, so dense BLAS "
                        "gains nothing from them",
                        f'eval "$(blastune env --threads {cores})"  (or blastune env --pin: one thread per core)')]
    if n <= cores:
        return [Finding(cid, "ok", f"{n} BLAS thread(s) fit the {cores} physical cores", "")]
    return [Finding(cid, "ok", f"{n} threads exceed even the {cpus} CPUs (see threads-over-cores)", "")]


def check_hybrid(ctx: Context) -> list[Finding]:
    cid = "hybrid-cores"
    topo = _topology(ctx)
    if topo is None or not topo.hybrid:
        return [Finding(cid, "ok", "one core type among the CPUs this process may use", "")]
    n, source = job_threads(ctx, topo)
    kinds = topo.kinds
    p_cores = [c for c in topo.cores if c.kind == "P"]
    if n < 2:
        return [Finding(cid, "ok", f"one BLAS thread per job ({source}) on a hybrid CPU", "")]
    listing = ", ".join(f"{k}: {format_cpulist(v)}" for k, v in kinds.items())
    p_cpus = format_cpulist(c.cpus[0] for c in p_cores)
    fix = (f"run on the P-cores only: taskset -c {p_cpus} with {len(p_cores)} threads, "
           f"or blastune env --jobs {max(ctx.jobs, 1)} --pin") if p_cores else "pin each job to one core type"
    return [Finding(cid, "warning", f"{n} BLAS threads ({source}) can run on both P- and E-cores ({listing}): "
                    "OpenBLAS and MKL split a product into equal parts, so the P-cores wait for the E-cores",
                    fix)]


def check_jobs_over_physical(ctx: Context) -> list[Finding]:
    cid = "jobs-over-physical"
    topo = _topology(ctx)
    if topo is None:
        return [Finding(cid, "ok", "topology not readable here", "")]
    if ctx.jobs == 1:
        return [Finding(cid, "ok", "one job planned (pass --jobs N to check N concurrent jobs)", "")]
    n, source = job_threads(ctx, topo)
    total, cores = n * ctx.jobs, topo.physical_cores
    if total > cores:
        per = max(1, cores // ctx.jobs)
        return [Finding(cid, "warning", f"{ctx.jobs} jobs x {n} BLAS threads ({source}) = {total} threads on "
                        f"{cores} physical cores ({len(topo.cpus)} CPUs): jobs share cores",
                        f"{per} thread(s) per job, pinned: " + _fix_pin(ctx.jobs))]
    return [Finding(cid, "ok", f"{ctx.jobs} jobs x {n} BLAS threads = {total} fit the {cores} physical cores", "")]


def check_narrow_affinity(ctx: Context) -> list[Finding]:
    cid = "affinity-narrower"
    topo = _topology(ctx)
    if topo is None or not topo.limited_by:
        return [Finding(cid, "ok", "this process may use every CPU of the machine", "")]
    n, source = job_threads(ctx, topo)
    cpus = len(topo.cpus)
    if n > cpus:
        return [Finding(cid, "warning", f"{n} BLAS threads ({source}) but this process may run on only {cpus} of "
                        f"the machine's {len(topo.machine_cpus)} CPUs ({'; '.join(topo.limited_by)}): "
                        "threads take turns on the same CPUs",
                        f'eval "$(blastune env --threads {topo.physical_cores})"')]
    return [Finding(cid, "ok", f"{n} BLAS threads fit the {cpus} CPUs this process may use "
                    f"({'; '.join(topo.limited_by)})", "")]


TOPOLOGY_CHECKS = (
    ("numa-spread", check_numa_spread),
    ("smt-as-cores", check_smt_as_cores),
    ("hybrid-cores", check_hybrid),
    ("jobs-over-physical", check_jobs_over_physical),
    ("affinity-narrower", check_narrow_affinity),
)
