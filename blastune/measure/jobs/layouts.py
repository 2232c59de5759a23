"""Which layouts ``blastune jobs`` measures: the default grid, the user's spellings, the groups that
may be alive at once, and whether they fit in memory.

The default grid stays small on any machine: on up to 8 usable cores every W x T that fills the
cores (powers of two and the full count) under both executors; above 8 cores one process layout per
worker count W (powers of two, thinned to a few), each W x (cores / W) filling the cores, the
thread executor only at 1 BLAS thread per worker, pinned variants where pinning changes something
(more than one L3 domain / NUMA node), and the naive layout -- at most ``MAX_DEFAULT_LAYOUTS``.
"""

from __future__ import annotations

from blastune.core.counts import check_count, format_bytes, per_job
from blastune.documents.jobs import EXECUTORS, Layout, Workload
from blastune.errors import BlastuneError
from blastune.measure.ops import words

__all__ = [
    "EXECUTORS",
    "Layout",
    "MAX_DEFAULT_LAYOUTS",
    "default_layouts",
    "parse_layouts",
    "layouts_from_lists",
    "with_baseline",
    "groups",
    "check_memory",
    "powers_up_to",
]

MAX_DEFAULT_LAYOUTS = 12
SMALL_MACHINE = 8  # up to this many cores: the full grid (13 layouts at 8, 5 at 2)
# a worker process before its task's data: Python, numpy, the BLAS (~35 MiB)
WORKER_BYTES = 64 * 2**20


def powers_up_to(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    out, p = [], 1
    while p <= n:
        out.append(p)
        p *= 2
    return sorted(set(out) | {n})


def _thin(values: list[int], keep: int, must: set[int]) -> list[int]:
    """At most ``keep`` of ``values`` (sorted), the ends and ``must`` always kept, the rest spread
    evenly."""
    if len(values) <= keep:
        return values
    chosen = {values[0], values[-1]} | (must & set(values))
    rest = [v for v in values if v not in chosen]
    room = max(0, keep - len(chosen))
    if room and rest:
        step = len(rest) / room
        chosen |= {rest[int(i * step + step / 2)] for i in range(room)}
    return sorted(chosen)


def _pinned_plan(workers: int, topology):
    """The CPU sets of a pinned W-worker layout (None where pinning is unavailable or
    impossible)."""
    from blastune.control.pinning import can_pin, plan_layout

    if not can_pin() or topology is None:
        return None
    try:
        return plan_layout(workers, topology)
    except BlastuneError:
        return None


def _domain_counts(topology) -> list[int]:
    """How many L3 domains, NUMA nodes and sockets ``topology`` has (none when unknown)."""
    if topology is None:
        return []
    return [len(getattr(topology, name)) for name in ("l3_domains", "numa_nodes", "sockets")]


def default_layouts(workload: Workload, cores: int, topology=None) -> list[Layout]:
    """The layouts ``blastune jobs`` measures when none are given (see the module docstring).

    Workloads that never call BLAS get T = 1 only: their BLAS thread count cannot matter.
    ``topology`` (``facts.topology.Topology``) adds pinned variants on machines where they differ.
    """
    cores = check_count(cores, "usable core count")
    blas = workload.uses_blas
    if cores <= SMALL_MACHINE:
        thread_counts = (lambda room: sorted({1, room})) if blas else (lambda room: [1])
        layouts = [Layout("serial", 1, t) for t in thread_counts(cores)]
        for w in powers_up_to(cores):
            if w == 1:
                continue
            for t in thread_counts(per_job(cores, w)):
                layouts += [Layout("thread", w, t), Layout("process", w, t)]
        if blas and cores > 1:
            layouts.append(Layout("process", cores, None))
        return layouts
    layouts = [Layout("serial", 1, 1)] + ([Layout("serial", 1, cores)] if blas else [])
    layouts.append(Layout("thread", cores, 1))
    if blas:
        layouts.append(Layout("process", cores, None))
    domains = {n for n in _domain_counts(topology) if 1 < n < cores}
    worker_counts = [w for w in powers_up_to(cores) if w > 1] if blas else [cores]
    pinned_room = 0
    # pinning changes where threads run only when there is more than one cache / memory domain
    if blas and any(n > 1 for n in _domain_counts(topology)):
        pinned_room = min(3, MAX_DEFAULT_LAYOUTS - len(layouts) - 4)
    ws = _thin(worker_counts, MAX_DEFAULT_LAYOUTS - len(layouts) - pinned_room, domains)
    process = [Layout("process", w, per_job(cores, w) if blas else 1) for w in ws]
    layouts[2:2] = process
    if pinned_room:
        # pinning matters most where a worker's threads would otherwise straddle domains
        for w in _thin([w for w in ws if w < cores] or ws, pinned_room, domains):
            sets = _pinned_plan(w, topology)
            if sets:
                layouts.append(Layout("process", w, sets[0].threads, pinned=True))
    return layouts[:MAX_DEFAULT_LAYOUTS]


def parse_layouts(text: str) -> list[Layout]:
    """'serial,thread:2x1,process:2x1,process:2xdefault,process:2x1+pin' -> layouts (W defaults to
    1, T to 1)."""
    out = []
    for item in words([text]):
        body, plus, suffix = item.partition("+")
        if plus and suffix != "pin":
            raise BlastuneError(
                f"invalid layout {item!r}: the only suffix is +pin (e.g. process:2x1+pin)"
            )
        executor, _, shape = body.partition(":")
        if executor not in EXECUTORS:
            raise BlastuneError(
                f"invalid layout {item!r}: the executor must be one of {', '.join(EXECUTORS)} "
                "(e.g. serial, thread:2x1, process:2x1, process:2xdefault)"
            )
        w_text, _, t_text = (shape or "1").partition("x")
        if (
            not w_text.isascii()
            or not w_text.isdigit()
            or not (t_text in ("", "default", "naive") or (t_text.isascii() and t_text.isdigit()))
        ):
            raise BlastuneError(
                f"invalid layout {item!r}: use EXECUTOR:WxT with whole numbers, "
                "T may be 'default' (e.g. process:2x1)"
            )
        workers = int(w_text)
        threads = None if t_text in ("default", "naive") else int(t_text or 1)
        if workers < 1 or (threads is not None and threads < 1):
            raise BlastuneError(f"invalid layout {item!r}: workers and threads must be >= 1")
        if executor == "serial" and workers != 1:
            raise BlastuneError(f"invalid layout {item!r}: serial runs 1 worker (use serial:1xT)")
        if plus and executor != "process":
            raise BlastuneError(f"invalid layout {item!r}: +pin applies to process layouts only")
        out.append(Layout(executor, workers, threads, pinned=bool(plus)))
    if not out:
        raise BlastuneError("no layout given: e.g. --layouts serial,process:2x1")
    return out


def layouts_from_lists(
    workers: list[int], threads: list[int | None], executors=("thread", "process")
) -> list[Layout]:
    """--workers 1,2 --threads 1,2: W = 1 is serial, W > 1 runs under each executor."""
    out = []
    for w in workers:
        for t in threads:
            if w == 1:
                out.append(Layout("serial", 1, t))
            else:
                out += [Layout(e, w, t) for e in executors if e != "serial"]
    return out


def with_baseline(layouts: list[Layout]) -> list[Layout]:
    """Serial x 1 BLAS thread first: every speed-up is measured against it."""
    base = Layout("serial", 1, 1)
    return [base] + [lay for lay in dict.fromkeys(layouts) if lay != base]


def groups(layouts: list[Layout], cores: int) -> list[list[Layout]]:
    """Consecutive layouts whose worker processes may all be alive at once (bounded for big
    machines)."""
    cap = max(8, 2 * cores)
    out, cur, live = [], [], 0
    for lay in layouts:
        n = lay.workers if lay.executor == "process" else 0
        if cur and live + n > cap:
            out.append(cur)
            cur, live = [], 0
        cur.append(lay)
        live += n
    return out + [cur] if cur else out


def check_memory(workload: Workload, planned: list[list[Layout]]) -> None:
    """Refuse, before any worker starts, a plan whose live workers would not fit in memory: the
    serial baseline stays alive beside each group, each thread layout and each worker process builds
    its own inputs, and each worker process (and each layout's own process) is a Python with numpy
    and a BLAS."""
    from blastune.facts.cpu import available_memory
    from blastune.measure.workloads import memory_bytes

    each = memory_bytes(workload)
    copies, procs = 1, 0
    for g in planned:
        c = sum(lay.workers if lay.executor == "process" else 1 for lay in g)
        if 1 + c > copies:
            copies, procs = 1 + c, sum(lay.workers for lay in g if lay.executor == "process")
    need = each * copies + WORKER_BYTES * procs
    avail, source = available_memory()
    if avail is not None and need > avail:
        raise BlastuneError(
            f"{workload.describe()} needs about {format_bytes(each)} per worker and the layouts "
            f"keep {copies} workers ({procs} of them processes) alive at once: "
            f"{format_bytes(need)}, but only {format_bytes(avail)} is available ({source}): "
            "choose a smaller --size, or fewer --layouts"
        )
