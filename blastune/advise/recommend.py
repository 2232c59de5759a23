"""``blastune recommend``: which layout and how many BLAS threads per job, from measurements.

The input is a saved ``jobs`` result (layouts measured side by side), a saved ``sweep`` result (one
process at several thread counts), or -- when neither is given -- a short ``jobs`` run made here.
The choice is the fastest measured layout that fits the request; a layout with fewer BLAS threads
wins a near tie (within ``TIE``), because fewer threads leave room for whatever else runs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from blastune.errors import BlastuneError

SCHEMA = "blastune.recommendation/1"
TIE = 0.03            # layouts within 3% of the fastest count as equally fast
SWEEP_TIE = 0.05      # thread counts within 5% of the fastest (one job alone, no contention measured)
BUILTIN_OP, BUILTIN_SIZE = "dot", 300
BUILTIN_SECONDS, BUILTIN_REPEATS = 0.5, 2


@dataclass
class Recommendation:
    jobs: int | None                 # concurrent jobs asked about (None: the best layout overall)
    executor: str                    # serial | thread | process
    workers: int
    threads: int                     # BLAS threads per worker/job: what the exports set
    layout: str                      # human label
    spec: str                        # --layouts spelling
    rationale: list[str]             # short sentences, each naming measured numbers
    env: dict[str, str]
    shell: str
    exports: str
    python: str                      # the same advice as Python code
    source: str                      # the file, or the built-in measurement
    source_kind: str                 # jobs | sweep
    measured: dict | None = None     # the chosen layout's numbers (None when extrapolated)
    best: dict | None = None         # the fastest layout measured
    within_best: float | None = None  # chosen throughput / fastest throughput
    same_machine: bool = True
    notices: list[str] = field(default_factory=list)
    profile: str | None = None       # where the profile was saved
    profile_entries: dict = field(default_factory=dict)

    def to_dict(self):
        from blastune import __version__

        return {"schema": SCHEMA, "blastune_version": __version__, **asdict(self)}


# --- reading the measurement ------------------------------------------------------------------------

def _threads_of(row: dict, default: int | None) -> int | None:
    t = row["layout"].get("threads")
    return t if t is not None else (row.get("threads_seen") or default)


def _pick(rows: list[dict]) -> dict:
    """The fastest row; near ties go to fewer BLAS threads per worker, then fewer workers."""
    top = max(r["tasks_per_s"] for r in rows)
    close = [r for r in rows if r["tasks_per_s"] >= (1 - TIE) * top]
    return min(close, key=lambda r: (r["layout"].get("threads") is None, r["layout"].get("threads") or 0,
                                     -r["tasks_per_s"]))


def _summary(row: dict) -> dict:
    keys = ("tasks_per_s", "speedup", "wall_s", "cpu_efficiency", "busy_cores", "threads_seen")
    return {"layout": row["layout"]["label"], "spec": row["layout"]["spec"], **{k: row.get(k) for k in keys}}


def _rate(row: dict) -> str:
    return f"{row['tasks_per_s']:.1f} tasks/s ({row['speedup']:.2f}x serial)" if row.get("speedup") else \
        f"{row['tasks_per_s']:.1f} tasks/s"


def _jobs_rows(doc: dict) -> list[dict]:
    rows = doc.get("results")
    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and isinstance(r.get("layout"), dict) and isinstance(r.get("tasks_per_s"), (int, float))
            for r in rows):
        raise BlastuneError("the jobs results file has no measured layouts ('results' is missing or malformed)")
    return rows


def from_jobs(doc: dict, jobs: int | None, cores: int) -> tuple[dict, list[str], dict]:
    """(choice, rationale, profile entries) from a ``blastune.jobs`` document."""
    rows = _jobs_rows(doc)
    default = doc.get("default_threads")
    w = doc.get("workload") or {}
    what = f"{doc.get('tasks')} tasks of {_workload_text(w)}"
    best = max(rows, key=lambda r: r["tasks_per_s"])
    why = []
    if jobs is None:
        choice = _pick(rows)
    else:
        # N concurrent jobs are N processes (or one serial job): only those layouts answer the question
        same = [r for r in rows if r["layout"]["workers"] == jobs and r["layout"]["executor"] in (
            ("serial", "process") if jobs == 1 else ("process",))]
        if not same:
            threads = max(1, cores // jobs)
            why.append(f"no layout with {jobs} worker processes was measured; {cores} usable cores // "
                       f"{jobs} jobs = {threads} BLAS thread(s) each"
                       + (", so the jobs do not oversubscribe the cores" if jobs * threads <= cores else ""))
            why.append(f"fastest measured: {best['layout']['label']}, {_rate(best)} on {what}")
            return _extrapolated(jobs, threads), why, _entries_from_jobs(rows, default)
        choice = _pick(same)
    why.append(f"{choice['layout']['label']}: {_rate(choice)} on {what}")
    if choice is not best:
        share = choice["tasks_per_s"] / best["tasks_per_s"]
        why.append(f"{share:.0%} of the fastest measured layout ({best['layout']['label']}, {_rate(best)})")
    why += _contrasts(rows, choice, default, cores)
    return choice, why, _entries_from_jobs(rows, default)


def _contrasts(rows, choice, default, cores) -> list[str]:
    """The comparisons that explain the choice: naive threads, and threads against processes."""
    out = []
    lay = choice["layout"]
    naive = [r for r in rows if r["layout"].get("threads") is None and r is not choice]
    for r in naive:
        t = r.get("threads_seen") or default
        slower = choice["tasks_per_s"] / r["tasks_per_s"] if r["tasks_per_s"] else float("inf")
        if slower > 1 + TIE:
            over = f"{r['layout']['workers']} x {t} = {r['layout']['workers'] * t} threads on {cores} cores" \
                if t else "the library's default threads"
            out.append(f"the naive layout, {r['layout']['label']} ({over}), ran {_rate(r)}: {slower:.1f}x slower")
    others = sorted((r for r in rows if r is not choice and r["layout"].get("threads") is not None),
                    key=lambda r: -r["tasks_per_s"])
    mentioned = set()
    if lay["executor"] in ("thread", "process") and lay.get("threads") is not None:
        other = "thread" if lay["executor"] == "process" else "process"
        twin = next((r for r in rows if r["layout"]["executor"] == other and r["layout"]["workers"] == lay["workers"]
                     and r["layout"].get("threads") == lay.get("threads")), None)
        if twin is not None:
            mentioned.add(twin["layout"]["spec"])
            gil = (twin["layout"]["executor"] == "thread" and (twin.get("speedup") or 0) < 1.2
                   and (choice.get("speedup") or 0) >= 1.4)  # processes overlap the task, threads do not
            out.append(f"{twin['layout']['label']} ran {_rate(twin)}"
                       + (": the task holds the GIL, so threads cannot overlap it" if gil else ""))
    nxt = next((r for r in others if r["layout"]["spec"] not in mentioned), None)
    if nxt is not None and nxt["layout"]["spec"] != "serial:1x1":  # the baseline is in every "x serial" already
        out.append(f"next best: {nxt['layout']['label']}, {_rate(nxt)}")
    return out


def _entries_from_jobs(rows, default) -> dict[int, dict]:
    """Profile entries: for each number of worker processes measured, the best BLAS threads each."""
    entries = {}
    by_w: dict[int, list] = {}
    for r in rows:
        lay = r["layout"]
        if lay["executor"] == "process" or (lay["executor"] == "serial" and lay["workers"] == 1):
            by_w.setdefault(lay["workers"], []).append(r)
    for w, group in sorted(by_w.items()):
        c = _pick(group)
        t = _threads_of(c, default)
        if t:
            entries[w] = {"threads": t, "layout": c["layout"]["spec"],
                          "reason": f"{c['layout']['label']} measured {_rate(c)}"}
    return entries


def _extrapolated(jobs: int, threads: int) -> dict:
    """A choice not measured as such: ``jobs`` concurrent jobs (one serial job, else that many
    processes) of ``threads`` BLAS threads each."""
    from blastune.measure.jobs.core import Layout

    return {"layout": Layout("serial" if jobs == 1 else "process", jobs, threads).to_dict(), "extrapolated": True}


def _kind(doc: dict) -> str:
    """'blastune.jobs/1' -> 'jobs'."""
    return str(doc.get("schema", "")).partition("/")[0].removeprefix("blastune.")


def _workload_text(w: dict) -> str:
    try:
        from blastune.measure.workloads import Workload

        return Workload.from_dict(w).describe()
    except (KeyError, TypeError):
        return "the measured workload"


def from_sweep(doc: dict, jobs: int | None, cores: int) -> tuple[dict, list[str], dict]:
    """(choice, rationale, profile entries) from a ``blastune.sweep`` document (one job alone)."""
    from blastune.measure.sweep.core import annotate, check_document, ran_as_asked

    check_document(doc)
    annotate(doc)  # threads_ran: which counts the library really ran
    groups: dict[tuple, list[dict]] = {}
    for p in doc["points"]:
        if p.get("blas_op", True):
            groups.setdefault((p["op"], p["lib"], p["size"], p["dtype"]), []).append(p)
    for key, pts in groups.items():
        # a count the library did not run (ATLAS asked for 2 runs 1) is no evidence for that count
        groups[key] = [p for p in pts if ran_as_asked(p)] or pts
    if not groups:
        raise BlastuneError("the sweep results file has no BLAS points to recommend from: sweep a BLAS op "
                            "(e.g. blastune sweep --op dot)")
    # the largest problem is the one whose thread count matters most for a job's run time
    key = max(groups, key=lambda k: (k[2], -list(groups).index(k)))
    pts = sorted(groups[key], key=lambda p: p["threads"])
    op, lib, size, dtype = key

    def choose(n_jobs):
        room = max(1, cores // n_jobs)
        allowed = [p for p in pts if p["threads"] <= room] or pts[:1]
        fastest = min(p["median_s"] for p in allowed)
        return next(p for p in allowed if p["median_s"] <= (1 + SWEEP_TIE) * fastest), room

    n = jobs or 1
    pick, room = choose(n)
    times = ", ".join(f"{p['threads']} thread{'s' if p['threads'] > 1 else ''} {p['median_s'] * 1e3:.3g} ms"
                      for p in pts)
    why = [f"{lib} {op} {size}x{size} {dtype} from the sweep: {times}",
           f"{n} job(s) on {cores} usable cores leave {room} core(s) per job; {pick['threads']} BLAS "
           f"thread(s) is within {SWEEP_TIE:.0%} of the fastest count that fits"]
    one = next((p for p in pts if p["threads"] == 1), None)
    if one is not None and pick is not one:
        why.append(f"{pick['threads']} threads are {one['median_s'] / pick['median_s']:.2f}x faster than 1")
    why.append("the sweep timed one job alone: `blastune jobs` measures jobs running at the same time")
    choice = _extrapolated(n, pick["threads"])
    entries = {}
    for k in range(1, cores + 1):
        p, _ = choose(k)
        entries[k] = {"threads": p["threads"], "layout": f"process:{k}x{p['threads']}",
                      "reason": f"sweep of {op} {size}: {p['threads']} thread(s) fastest within {k} job(s)' share "
                                "of the cores"}
    return choice, why, entries


# --- the command ------------------------------------------------------------------------------------

def builtin_layouts(jobs: int | None, cores: int, workload):
    from blastune.measure.jobs.core import Layout, _powers_up_to, default_layouts

    if jobs is None:
        return default_layouts(workload, cores)
    room = max(1, cores // jobs)
    if jobs == 1:
        return [Layout("serial", 1, t) for t in _powers_up_to(cores)]
    return [Layout("process", jobs, t) for t in _powers_up_to(room)] + [Layout("process", jobs, None)]


def load_measurement(path) -> dict:
    """A jobs or sweep results file; anything else is one clear error."""
    from blastune.documents.load import load_results

    doc = load_results(path, None, 1)
    kind = _kind(doc)
    if kind not in ("jobs", "sweep"):
        raise BlastuneError(f"{path}: holds {kind} results; recommend reads jobs or sweep results")
    return doc


def recommend(source=None, jobs: int | None = None, shell: str = "bash", save_profile: bool = True,
              op: str = BUILTIN_OP, size: int = BUILTIN_SIZE, progress=None) -> Recommendation:
    """Recommend a layout and BLAS thread count for ``jobs`` concurrent jobs (None: the best layout).

    ``source`` is a saved jobs/sweep file (path) or an already loaded document (dict); without it a
    short built-in ``jobs`` measurement of ``op`` at ``size`` runs here (a few seconds).
    """
    from blastune.facts.cpu import usable_cores
    from blastune.control.exports import SHELLS
    from blastune.control.profile import matches_here

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise BlastuneError(f"invalid number of jobs {jobs!r}: must be a whole number >= 1")
    if shell not in SHELLS:
        raise BlastuneError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    cores = usable_cores()[0]
    notices = []
    if source is None:
        from blastune.measure.jobs.core import run_jobs
        from blastune.measure.workloads import make_workload

        workload = make_workload(op=op, size=size)
        doc = run_jobs(workload, None, builtin_layouts(jobs, cores, workload), repeats=BUILTIN_REPEATS,
                       progress=progress, target_seconds=BUILTIN_SECONDS).to_dict()
        where = f"built-in measurement ({workload.describe()}, {doc['tasks']} tasks)"
        notices += doc.get("warnings", [])
    elif isinstance(source, dict):
        doc = source
        where = f"{_kind(doc)} results of {doc.get('created') or 'unknown date'}"
    else:
        doc, where = load_measurement(source), str(source)
    kind = _kind(doc)
    same, why_not = matches_here(doc.get("fingerprint"))
    if not same:
        fp = doc.get("fingerprint") if isinstance(doc.get("fingerprint"), dict) else {}
        notices.append(f"{where} was {why_not}: the advice is for that machine, and is not saved as this "
                       "machine's profile")
        cores = fp.get("usable_cores") or doc.get("usable_cores") or cores
    try:
        return _advise(doc, kind, where, jobs, cores, shell, same, notices, save_profile)
    except BlastuneError as exc:
        raise BlastuneError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
        raise BlastuneError(f"{where}: malformed {kind or 'results'} file ({type(exc).__name__}: {exc})") from None


def _advise(doc, kind, where, jobs, cores, shell, same, notices, save_profile) -> Recommendation:
    from blastune.control.exports import render_exports
    from blastune.facts.environment import thread_env
    from blastune.control.profile import save_entries

    if kind == "jobs":
        choice, why, entries = from_jobs(doc, jobs, cores)
        rows = _jobs_rows(doc)
        best = max(rows, key=lambda r: r["tasks_per_s"])
        best_summary = _summary(best)
        within = None if choice.get("extrapolated") else choice["tasks_per_s"] / best["tasks_per_s"]
        default = doc.get("default_threads")
        if not (doc.get("workload") or {}).get("uses_blas", True):
            entries = {}  # a workload that never calls BLAS says nothing about BLAS threads
            why.append("this workload does not call BLAS: the exports only keep any BLAS it loads from "
                       "adding threads; the layout is what matters")
    elif kind == "sweep":
        choice, why, entries = from_sweep(doc, jobs, cores)
        best_summary, within, default = None, None, None
    else:
        raise BlastuneError(f"holds {kind or 'unknown'} results; recommend reads jobs or sweep results")
    lay = choice["layout"]
    threads = lay.get("threads") or choice.get("threads_seen") or default or 1
    if jobs is not None and jobs > cores:
        why.append(f"{jobs} jobs on {cores} usable cores share cores even at 1 thread each: "
                   f"running at most {cores} at a time (e.g. xargs -P {cores}) loses nothing")
    env = thread_env(threads)
    rec = Recommendation(
        jobs=jobs, executor=lay["executor"], workers=lay["workers"], threads=threads, layout=lay["label"],
        spec=lay["spec"], rationale=why, env=env, shell=shell, exports=render_exports(env, shell),
        python=_python_hint(lay["executor"], lay["workers"], threads), source=where, source_kind=kind,
        measured=None if choice.get("extrapolated") else _summary(choice), best=best_summary,
        within_best=within, same_machine=same, notices=notices,
        profile_entries={str(k): v for k, v in entries.items()},
    )
    if save_profile and same and entries:
        try:
            rec.profile = str(save_entries(entries, f"{kind}: {where}"))
        except OSError as exc:  # an unwritable cache must not cost the user the advice
            rec.notices.append(f"profile not saved: {exc}")
    return rec


def _python_hint(executor: str, workers: int, threads: int) -> str:
    if executor == "process":
        return (f"ProcessPoolExecutor({workers}, initializer=blastune.worker_initializer({threads}))  "
                f"# or multiprocessing.Pool({workers}, initializer=...)")
    if executor == "thread":
        return f"with blastune.limit({threads}): ThreadPoolExecutor({workers}).map(...)"
    return f"with blastune.limit({threads}): ..."
