"""doctor's checks for big machines: NUMA nodes, SMT siblings, hybrid P/E cores, narrow affinity.

They read the topology of the CPUs this process may use (``Context.topology``, read when the
context is built) and the one thread count per job (``Context.job_threads``). On a machine where a
check's subject does not exist (one NUMA node, no SMT, no E-cores, nothing narrowing the CPUs) it
says so with an ``ok`` finding. A problem another check reports is not reported again: each
finding names the check that speaks for it.
"""

from __future__ import annotations

from blastune.advise.doctor.checks import ONE_JOB, count, env_command, jobs_x_threads
from blastune.advise.doctor.model import Context
from blastune.advise.doctor.registry import check
from blastune.facts.topology import format_cpulist
from blastune.documents.doctor import Finding
from blastune.core.counts import per_job


def _fix_pin(jobs: int) -> str:
    return (
        f"{env_command(f'--jobs {jobs} --pin --job-index I')}  "
        f"(one per job; see blastune layout --jobs {jobs})"
    )


@check("numa-spread")
def check_numa_spread(ctx: Context) -> Finding:
    topo = ctx.topology
    if topo is None or len(topo.numa_nodes) < 2:
        return Finding("ok", "the CPUs this process may use are in one NUMA node")
    n, source = ctx.job_threads()
    if n < 2:
        return Finding("ok", f"one BLAS thread per job ({source}): no job spans NUMA nodes")
    nodes = ", ".join(f"node {d.index}: {format_cpulist(d.cpus)}" for d in topo.numa_nodes)
    biggest = max(len(d.cpus) for d in topo.numa_nodes)
    fix = _fix_pin(max(ctx.jobs, len(topo.numa_nodes)))
    if n > biggest:
        return Finding(
            "warning",
            f"one job's {n} BLAS threads ({source}) cannot fit in one NUMA "
            f"node (at most {biggest} CPUs; {nodes}): every product reads part of its "
            "memory from a remote node",
            fix,
        )
    return Finding(
        "info",
        f"this process may run on {len(topo.numa_nodes)} NUMA nodes ({nodes}) "
        f"and its {n} BLAS threads ({source}) are not pinned: the kernel may move them "
        "away from their memory's node",
        fix,
    )


@check("smt-as-cores")
def check_smt_as_cores(ctx: Context) -> Finding:
    """One job counting SMT siblings as cores: BLAS kernels already fill a core's FMA units, so a
    sibling thread only competes for them. (Several jobs: jobs-over-physical.)"""
    cores, cpus = ctx.physical_cores, ctx.usable_cores
    if not ctx.smt:
        return Finding(
            "ok",
            f"no SMT siblings among the {cpus} CPUs this process may use ({cores} physical cores)",
        )
    if ctx.jobs > 1:
        return Finding(
            "ok", f"{ctx.jobs} jobs: checked against the physical cores by jobs-over-physical"
        )
    n, source = ctx.job_threads()
    if cores < n <= cpus:
        return Finding(
            "warning",
            f"{n} BLAS threads ({source}): more than the {cores} physical "
            f"cores this process may use -- its {cpus} CPUs count SMT siblings, which "
            "share a core's FMA units, so dense BLAS gains nothing from them",
            f"{env_command(f'--threads {cores}')}  (or blastune env --pin: one thread per core)",
        )
    if n <= cores:
        return Finding(
            "ok", f"{count(n, 'BLAS thread')} fit the {cores} physical cores this process may use"
        )
    return Finding(
        "ok", f"{n} threads exceed even the {cpus} usable CPUs: threads-over-cores says so"
    )


@check("hybrid-cores")
def check_hybrid(ctx: Context) -> Finding:
    topo = ctx.topology
    if topo is None or not topo.hybrid:
        return Finding("ok", "one core type among the CPUs this process may use")
    n, source = ctx.job_threads()
    if n < 2:
        return Finding("ok", f"one BLAS thread per job ({source}) on a hybrid CPU")
    p_cores = [c for c in topo.cores if c.kind == "P"]
    listing = ", ".join(f"{k}: {format_cpulist(v)}" for k, v in topo.kinds.items())
    p_cpus = format_cpulist(c.cpus[0] for c in p_cores)
    fix = "pin each job to one core type"
    if p_cores:
        fix = (
            f"run on the P-cores only: taskset -c {p_cpus} with {len(p_cores)} threads, "
            f"or blastune env --jobs {max(ctx.jobs, 1)} --pin"
        )
    return Finding(
        "warning",
        f"{n} BLAS threads ({source}) can run on both P- and E-cores "
        f"({listing}): OpenBLAS and MKL split a product into equal parts, so the "
        "P-cores wait for the E-cores",
        fix,
    )


@check("jobs-over-physical")
def check_jobs_over_physical(ctx: Context) -> Finding:
    """Jobs x threads that fit the usable CPUs only by counting SMT siblings as cores. More threads
    than the CPUs themselves is threads-x-jobs's finding, not said twice."""
    if ctx.jobs == 1:
        return Finding("ok", ONE_JOB)
    n, source = ctx.job_threads()
    total, cores, cpus = n * ctx.jobs, ctx.physical_cores, ctx.usable_cores
    if total > cpus:
        return Finding(
            "ok",
            f"{jobs_x_threads(ctx, n)}: more than the {cpus} usable CPUs, which threads-x-jobs "
            "reports",
        )
    if total > cores:
        per = per_job(cores, ctx.jobs)
        return Finding(
            "warning",
            f"{jobs_x_threads(ctx, n, source)} threads on {cores} physical cores ({cpus} CPUs): "
            "jobs share cores",
            f"{per} thread(s) per job, pinned: " + _fix_pin(ctx.jobs),
        )
    return Finding("ok", f"{jobs_x_threads(ctx, n)} fit the {cores} physical cores")


@check("affinity-narrower")
def check_narrow_affinity(ctx: Context) -> Finding:
    """Says what narrows the CPUs (a cpuset, an affinity mask). Threads beyond them are
    threads-over-cores's warning, which names the same narrowing: not said twice."""
    topo = ctx.topology
    if topo is None or not topo.limited_by:
        return Finding("ok", "this process may use every CPU of the machine")
    n, source = ctx.job_threads()
    cpus, narrowed = ctx.usable_cores, "; ".join(topo.limited_by)
    if n > cpus:
        return Finding(
            "ok",
            f"{n} BLAS threads ({source}) but this process may run on only {cpus} "
            f"of the machine's {ctx.machine_cpus} CPUs ({narrowed}): threads-over-cores "
            "reports it",
        )
    return Finding(
        "ok",
        f"{n} BLAS threads fit the {cpus} CPUs this process may use, of the "
        f"machine's {ctx.machine_cpus} ({narrowed})",
    )
