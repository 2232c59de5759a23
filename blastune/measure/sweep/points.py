"""One sweep point: the record of a measurement, and the figures derived from a group of them.

Derived figures that go beyond what is physically possible -- an efficiency above 100%, a speed-up
above the threads that ran, more than the nominal peak -- are kept but *flagged* with their reason
(``point.flags``), so no table or plot prints them as facts.
"""

from __future__ import annotations

import datetime as _dt

from blastune.documents.sweep import SweepDocument, SweepPoint
from blastune.measure.load import LOAD_PROBE_MIN_S
from blastune.measure.contention import SOURCE_SCHEDSTAT, judge
from blastune.measure.ops import OPS, check_memory

# A sweep point is one BLAS call whose threads move in lockstep: a thread kept off its CPU holds up
# every other at the next barrier, so the call loses what its threads' wait adds up to -- judged
# against one CPU (the call's critical path), whatever the thread count. The other half of the rule
# is jobs' (``measure.contention.judge``): only as much as other programs' CPU explains counts.
SWEEP_WANTED_CPUS = 1.0
# Two medians closer than this share are the same (``best_point``): the sweep repeats a point until
# its median is known to about 2% (``DEFAULT_TARGET_SPREAD``), so a smaller gain is not measured --
# and threads that buy nothing measurable are better left to other jobs.
SAME_WITHIN = 0.02

FLAG_REASONS = {
    "efficiency": (
        "above 100%: not possible per thread -- timing noise, or a disturbed 1-thread time"
    ),
    "speedup": "above the thread count: not possible -- timing noise, or a disturbed 1-thread time",
    "peak_pct": "above the nominal peak: the CPU clock runs above the one /proc/cpuinfo reports",
}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_count(n) -> bool:
    """A thread count a library reported (not None, a bool or a 0 standing for "unknown")."""
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


def record(
    spec: dict,
    impl: str,
    m,
    ctx: dict,
    *,
    isolated: bool,
    threads_seen: dict,
    other_cores: float | None,
    steal_cores: float | None = None,
) -> SweepPoint:
    """A ``SweepPoint`` from one ``timing.Measurement`` of ``spec`` (``point_spec``), measured
    with ``ctx`` (``point_context``), and how contended its samples were
    (``measure.contention.judge``: the wait others' CPU -- steal included -- explains, over one
    CPU)."""
    op_name, threads, usable = spec["op"], spec["threads"], ctx["usable"]
    op = OPS[op_name]
    st = m.stats
    if ctx["source"] == SOURCE_SCHEDSTAT and m.wait_pct is not None:
        wait_pct = m.wait_pct
        # an oversubscribed point's own extra threads wait by design: only the rest can be lost.
        # Counted by the threads the library reported running (OpenBLAS caps 1000 at its build's
        # maximum), else those asked for
        seen = [n for n in (threads_seen or {}).values() if _is_count(n)]
        ran = min(threads, max(seen)) if seen else threads
        own = 100.0 * max(0, ran - usable) if usable else 0.0
        lost = max(0.0, wait_pct - own) / 100.0
        contended = judge(
            lost,
            other_cores,
            SWEEP_WANTED_CPUS,
            steal_cpus=steal_cores,
            threshold_pct=ctx["threshold_pct"],
        ).contended
    else:  # no per-thread figures: the machine-wide probe, which cannot judge short points
        wait_pct = None
        contended = (
            other_cores is not None
            and m.elapsed_s >= LOAD_PROBE_MIN_S
            and judge(None, other_cores, SWEEP_WANTED_CPUS, usable=usable).contended
        )
    size, dtype = spec["size"], spec["dtype"]
    return SweepPoint(
        op=op_name,
        lib=ctx["lib"],
        size=size,
        dtype=dtype,
        threads=threads,
        impl=impl,
        blas_op=op.blas,
        isolated=isolated,
        threads_seen=dict(threads_seen),
        oversubscribed=threads > usable,
        flops=op.flops(size, dtype, ctx["lib"]),
        flops_nominal=op.nominal,
        memory_bytes=op.memory_bytes(size, dtype),
        median_s=st.median,
        q1_s=st.q1,
        q3_s=st.q3,
        iqr_s=st.iqr,
        min_s=st.min,
        max_s=st.max,
        mean_s=st.mean,
        spread=st.spread,
        repeats=st.repeats,
        loops=m.loops,
        warmup_s=m.warmup_s,
        elapsed_s=m.elapsed_s,
        stop=m.stop,
        unstable=m.unstable,
        samples_s=list(m.samples),
        other_load_cores=None if other_cores is None else round(other_cores, 2),
        busy=bool(contended),  # 0.1.0's name for "disturbed"; now the same judgement as 'contended'
        measured=now(),
        wait_pct=None if wait_pct is None else round(wait_pct, 2),
        contended=bool(contended),
        samples_wait_pct=[round(w, 2) for w in (m.sample_wait_pct or [])],
    )


def point_spec(op: str, size: int, dtype: str, threads: int) -> dict:
    """The spec of one point, as runners, workers and ``not_measured`` pass it around."""
    return {"op": op, "size": size, "dtype": dtype, "threads": threads}


def point_context(doc: SweepDocument) -> dict:
    """What every point of ``doc`` is built, timed and judged with: the same in this process and
    in a worker (which receives it in its job)."""
    return {
        "lib": doc.grid.lib,
        "settings": doc.settings,
        "usable": doc.cpu.usable_cores or 1,
        "source": doc.contention_source,
        "threshold_pct": doc.contended_wait_pct,
    }


def prepare(ctx: dict, op_name: str, size: int, dtype: str):
    """The inputs of a point, once they are known to fit in the memory we may still use."""
    check_memory(op_name, size, dtype)
    return OPS[op_name].prepare(size, dtype, ctx["lib"], ctx["settings"]["seed"])


def time_point(
    prepared, spec: dict, ctx: dict, budget: float, watch, *, isolated: bool, threads_seen: dict
) -> SweepPoint:
    """Time one prepared point (``spec``: op, size, dtype, threads) with ``timing.measure`` under
    the machine-wide load probe, and ``record`` it: the one measuring step of both runners (this
    process and the workers)."""
    from blastune.measure.load import LoadProbe
    from blastune.measure.timing import fresh_copies, measure

    settings = ctx["settings"]
    probe = LoadProbe()
    m = measure(
        prepared.fn,
        prepared.args,
        fresh_args=fresh_copies,
        target_spread=settings["target_spread"],
        min_repeats=settings["min_repeats"],
        budget=budget,
        watch=watch,
    )
    return record(
        spec,
        prepared.impl,
        m,
        ctx,
        isolated=isolated,
        threads_seen=threads_seen,
        other_cores=probe.other_cores(),  # sets probe.steal: read after it
        steal_cores=probe.steal,
    )


def peak_gflops(cpu, dtype: str, threads: int) -> float | None:
    """The nominal peak of ``threads`` threads (never more than the usable cores) for ``dtype``."""
    per_core = cpu.peak_gflops_per_core
    if not per_core:
        return None
    # cpu_info gives the FP64 peak; single precision packs twice the lanes into the same SIMD
    # registers
    factor = 2 if dtype in ("float32", "complex64") else 1
    return per_core * factor * min(threads, cpu.usable_cores or threads)


def best_point(pts: list[SweepPoint]) -> SweepPoint:
    """The fewest threads whose median is within noise of the fastest: threads that buy nothing
    measurable are better left to other jobs. Noise = ``SAME_WITHIN``, or twice the larger spread of
    the two points. A count the library did not run (ATLAS asked for 2 runs 1) cannot be the best
    count: any gain it shows is noise."""
    pts = [p for p in pts if p.ran_as_asked] or [min(pts, key=lambda p: p.threads)]
    fastest = min(pts, key=lambda p: p.median_s)
    for p in sorted(pts, key=lambda p: p.threads):
        tol = max(SAME_WITHIN, 2 * max(p.spread or 0, fastest.spread or 0))
        if p.median_s <= fastest.median_s * (1 + tol):
            return p
    return fastest


def _threads_ran(doc: SweepDocument, p: SweepPoint) -> int | None:
    # the thread count the BLAS itself reported (LAPACK may be a separate, single-threaded file)
    ran = p.threads_seen.get(doc.blas(p.lib).get("filepath"))
    return ran if _is_count(ran) else None


def bound_flags(p: SweepPoint, ran: int) -> dict[str, str]:
    """The derived figures of ``p`` that are beyond a physical bound, with the reason."""
    out = {}
    if p.efficiency is not None and p.efficiency > 1.0:
        out["efficiency"] = FLAG_REASONS["efficiency"]
    if p.speedup is not None and p.speedup > ran:
        out["speedup"] = FLAG_REASONS["speedup"]
    if p.peak_pct is not None and p.peak_pct > 100.0:
        out["peak_pct"] = FLAG_REASONS["peak_pct"]
    return out


def derive(doc: SweepDocument) -> SweepDocument:
    """Fill speed-up over 1 thread, efficiency, GFLOP/s, % of nominal peak, flags and the best
    count."""
    usable = doc.cpu.usable_cores
    for p in doc.points:
        p.threads_ran = _threads_ran(doc, p)
    for pts in doc.groups().values():
        base = next((p for p in pts if p.threads == 1), None)
        # BLAS threads cannot speed up an op BLAS does not run (add, sin, norm_isf): any difference
        # is noise, so the fewest threads is the honest "best" there
        best = best_point(pts) if pts[0].blas_op else min(pts, key=lambda p: p.threads)
        for p in pts:
            # the threads that really ran: ATLAS asked for 2 and running 1 is judged as 1 thread
            ran = p.threads_ran or p.threads
            p.gflops = p.flops / p.median_s / 1e9 if p.flops and p.median_s > 0 else None
            peak = peak_gflops(doc.cpu, p.dtype, ran)
            p.peak_pct = 100 * p.gflops / peak if p.gflops and peak else None
            p.speedup = base.median_s / p.median_s if base and p.median_s > 0 else None
            p.efficiency = p.speedup / ran if p.speedup is not None else None
            if usable:
                p.oversubscribed = ran > usable
            p.best = p is best and len(pts) > 1  # "best" needs something to compare with
            p.flags = {
                **{k: v for k, v in p.flags.items() if k not in FLAG_REASONS},
                **bound_flags(p, ran),
            }
    order = list(OPS)
    doc.points.sort(
        key=lambda p: (
            order.index(p.op) if p.op in order else 99,
            p.lib,
            p.dtype,
            p.size,
            p.threads,
        )
    )
    return doc
