"""One ``jobs`` run: the session owns the plan, the layout processes, the budget, the progress
reports and the results file.

Steps (``JobsSession.run``): start the serial baseline and calibrate the task count; estimate the
time and report the plan; then group by group (layouts whose workers may all be alive at once) start
and warm every layout, and time one batch per layout per round, round after round (interleaved), so
a burst of load from other programs hits every layout rather than whichever one happened to run.
A layout much slower than serial is timed in the first round only; the budget stops further
batches (and layouts) once the next one would not fit. Every exit path ends and reaps the layout
processes; a stop signal keeps the finished batches (``JobsInterrupted.result``).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from blastune.documents.jobs import JobsResult, Layout, LayoutResult, Workload
from blastune.measure.budget import Budget, eta_s
from blastune.measure.jobs import analysis
from blastune.measure.jobs.layout_handle import LayoutHost
from blastune.measure.jobs.layouts import check_memory, groups, with_baseline
from blastune.measure.load import LOAD_PROBE_MIN_S
from blastune.measure.signals import JobsInterrupted, raise_pending, stop_on_signals

TARGET_SERIAL_SECONDS = 1.0  # calibrated tasks: one serial batch takes about this long
SLOW_FACTOR = 5.0  # a layout this many times slower than serial is timed only once ...
SLOW_MIN_SECONDS = 2.0  # ... when that also costs more than this per batch
COOL_DOWN_SECONDS = 0.2  # pause after a multi-threaded BLAS batch (its idle threads spin briefly)
SHORT_BATCH_SECONDS = 0.1  # serial batches shorter than this measure overheads more than the work
# other programs kept this share of the CPUs busy on average: say timings are disturbed (a tenth of
# the machine: 0.2 CPUs on 2, 1.6 on 16 -- background daemons stay far below it on any size)
OTHER_LOAD_WARN_SHARE = 0.10
HOST_START_GUESS_S = 0.6  # starting one layout's process before any was measured
WORKER_START_GUESS_S = 0.4  # starting one worker process (per core's worth of workers)
MIN_TARGET_SECONDS = 0.05  # the budget never shrinks a calibrated serial batch below this
# Every layout's batch lasts at least this long when the task count is calibrated (not only the
# serial one): a 16-way layout of a 1 s serial batch lasted 0.06-0.16 s, where starting the workers
# together and collecting them weigh in. A layout whose first batch is shorter gets more tasks (its
# tasks/s stays comparable: a rate), and that first batch is thrown away.
MIN_BATCH_SECONDS = 0.5
# ... or this share of the serial target when that is shorter (tests and a --budget ask for short
# batches; a calibrated serial batch may come out a little under its target and must not be redone)
MIN_BATCH_SHARE = 0.8
RESCALE_MARGIN = 1.25  # a short layout's new task count aims this far above the minimum


def _spins(layout: Layout) -> bool:
    """Does the layout run multi-threaded BLAS, whose idle threads spin for a moment after a call
    returns (and get ``COOL_DOWN_SECONDS`` to park before the next batch)?"""
    return layout.threads is None or layout.threads > 1


def _cool_down(layout: Layout) -> None:
    if _spins(layout):
        time.sleep(COOL_DOWN_SECONDS)


def _mean_wall(result: LayoutResult | None) -> float | None:
    return sum(result.walls) / len(result.walls) if result is not None and result.walls else None


class Slot:
    """One layout in this run: its process, its batches so far, its estimate."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.host: LayoutHost | None = None
        self.result: LayoutResult | None = None
        # tasks per batch of this layout (more than the serial count where its batch would be
        # too short)
        self.tasks: int | None = None
        self.settled = False  # its task count is final
        self.active = True  # still timed in the coming rounds
        self.estimate_s = 0.0

    @property
    def batches(self) -> int:
        return len(self.result.walls) if self.result is not None else 0


class JobsSession:
    def __init__(
        self,
        workload: Workload,
        tasks: int | None,
        layouts: list[Layout],
        repeats: int,
        cores: int,
        *,
        out=None,
        force: bool = False,
        budget_s: float | None = None,
        progress=None,
        target_seconds: float = TARGET_SERIAL_SECONDS,
        logical_cores: int | None = None,
    ):
        self.workload, self.tasks, self.repeats, self.cores = workload, tasks, repeats, cores
        self.logical_cores = logical_cores or cores
        self.out, self.force = out, force
        self.progress = progress or (lambda event, data: None)
        self.target_seconds = target_seconds
        self.plan = with_baseline(layouts)
        self.groups = groups(self.plan[1:], cores) or [[]]
        self.slots = {lay: Slot(lay) for lay in self.plan}
        self.live: list[LayoutHost] = []
        self.budget = Budget(budget_s)
        self.done = 0
        self.total = repeats * len(self.plan)
        self.startups: list[float] = []
        self.skipped: list[Layout] = []
        self.estimate_s: float | None = None
        self.per_task_s: float | None = None
        self.calibrated = tasks is None  # the count is ours to choose: every batch >= min_batch_s
        self.target_used = target_seconds  # the serial target calibrated to (a budget shrinks it)

    # --- the steps --------------------------------------------------------------------------------

    @property
    def base(self) -> Slot:
        """The serial baseline: every speed-up is measured against it."""
        return self.slots[self.plan[0]]

    def start(self, slot: Slot) -> dict:
        slot.host = LayoutHost(slot.layout)
        self.live.append(slot.host)
        info = slot.host.start(self.workload, self.cores)
        self.startups.append(info["startup_s"])
        slot.result = LayoutResult(slot.layout, [], [], info["threads_seen"], info["startup_s"])
        return info

    def close(self, slot: Slot) -> None:
        if slot.host is not None:
            slot.host.close()
            self.live.remove(slot.host)
            slot.host = None

    def calibrate(self, base: Slot, warmup_per_task_s: float | None) -> None:
        """Tasks per batch (unless given), and the cost of one task for the estimate."""
        if self.tasks is not None:
            # an overestimate: the warm-up pays first-touch costs
            self.per_task_s = warmup_per_task_s
            return
        target = self.target_seconds
        if self.budget.seconds is not None:
            target = self._target_for_budget(target)
        out = base.host.calibrate(target)
        self.per_task_s = out["per_task_s"]
        self.tasks = out["tasks"]
        self.target_used = target

    @property
    def min_batch_s(self) -> float:
        """The shortest batch a calibrated run times (see MIN_BATCH_SECONDS)."""
        return min(MIN_BATCH_SECONDS, MIN_BATCH_SHARE * self.target_used)

    def _target_for_budget(self, target: float) -> float:
        """The serial batch time that lets the whole plan fit in the budget (at least
        MIN_TARGET_SECONDS)."""
        startup = sum(self._startup_guess(lay) for lay in self.plan)
        # each layout's batch lasts target / its parallelism, never under MIN_BATCH_SHARE x target
        per_target = self.repeats * sum(
            max(1.0 / self._parallel(lay), MIN_BATCH_SHARE) for lay in self.plan
        )
        cool = self.repeats * COOL_DOWN_SECONDS * sum(map(_spins, self.plan))
        room = 0.8 * self.budget.seconds - startup - cool - self.budget.elapsed()
        return max(MIN_TARGET_SECONDS, min(target, room / per_target if per_target else target))

    def _parallel(self, lay: Layout) -> int:
        return max(1, min(lay.workers, self.cores))

    def _startup_guess(self, lay: Layout) -> float:
        measured = sum(self.startups) / len(self.startups) if self.startups else HOST_START_GUESS_S
        if lay.executor != "process":
            return measured
        return measured + WORKER_START_GUESS_S * -(-lay.workers // self.cores)

    def _batch_guess(self, slot: Slot) -> float:
        own = _mean_wall(slot.result)
        if own is not None:
            return own
        serial = _mean_wall(self.base.result)
        if serial is None:
            serial = self.tasks * (self.per_task_s or 0.0)
        guess = serial / self._parallel(slot.layout)
        return max(guess, self.min_batch_s) if self.calibrated else guess

    def remaining_s(self) -> float:
        """The time the rest of the plan needs, from the measured cost so far."""
        left = 0.0
        for lay in self.plan:
            slot = self.slots[lay]
            if not slot.active:  # retired, or skipped: the budget ran out
                continue
            todo = max(0, self.repeats - slot.batches)
            cool = COOL_DOWN_SECONDS if _spins(lay) else 0.0
            left += todo * (self._batch_guess(slot) + cool)
            if slot.result is None:
                left += self._startup_guess(lay)
        return left

    def report_plan(self) -> None:
        self.estimate_s = self.budget.elapsed() + self.remaining_s()
        self.progress(
            "plan",
            {
                "layouts": len(self.plan),
                "batches": self.total,
                "tasks": self.tasks,
                "estimate_s": self.estimate_s,
                "budget_s": self.budget.seconds,
            },
        )

    def _settle(self, slot: Slot) -> dict:
        """The first batch of a layout in a calibrated run: kept when it lasted at least
        ``min_batch_s``; else the layout gets more tasks, and that short batch is thrown away."""
        batch = slot.host.batch(slot.tasks)
        slot.settled = True
        if not self.calibrated or batch["wall"] >= self.min_batch_s:
            return batch
        scale = RESCALE_MARGIN * self.min_batch_s / max(batch["wall"], 1e-6)
        workers = max(1, slot.layout.workers)
        slot.tasks = -(-max(slot.tasks + 1, int(slot.tasks * scale)) // workers) * workers
        _cool_down(slot.layout)
        return slot.host.batch(slot.tasks)

    def time_batch(self, slot: Slot, rnd: int) -> None:
        raise_pending()  # a stop that arrived inside a __del__ ends the run here
        base = self.base
        self.progress(
            "batch",
            {
                "done": self.done,
                "total": self.total,
                "layout": slot.layout,
                "eta_s": eta_s(self.remaining_s()),
            },
        )
        if slot.tasks is None:
            slot.tasks = self.tasks
        batch = slot.host.batch(slot.tasks) if slot.settled else self._settle(slot)
        analysis.add_batch(slot.result, batch)
        self.done += 1
        _cool_down(slot.layout)
        wall = batch["wall"]
        base_per_task = base.result.walls[-1] / max(1, base.tasks or self.tasks)
        if (
            rnd == 0
            and slot is not base
            and self.repeats > 1
            and wall > SLOW_MIN_SECONDS
            and wall / max(1, slot.tasks) > SLOW_FACTOR * base_per_task
        ):
            slot.result.notes.append(
                f"timed once: {wall:.2f} s, over {SLOW_FACTOR:g}x the serial time per task"
            )
            self._retire(slot)

    def _retire(self, slot: Slot) -> None:
        slot.active = False
        self.total -= self.repeats - slot.batches

    def run_group(self, group: list[Layout]) -> None:
        base = self.base
        members = []
        for lay in group:
            slot = self.slots[lay]
            if not self.budget.fits(self._startup_guess(lay) + self._batch_guess(slot)):
                self.skipped.append(lay)
                self._retire(slot)
                continue
            self.start(slot)
            _cool_down(slot.layout)  # its warm-up leaves BLAS threads spinning: not beside the base
            members.append(slot)
        for rnd in range(self.repeats):
            for slot in [base, *members]:
                if not slot.active:
                    continue
                if not self.budget.fits(self._batch_guess(slot)) and not (
                    slot is base and not slot.result.walls
                ):
                    # the baseline's first batch always runs: every speed-up is measured against it
                    if slot.result.walls:
                        slot.result.notes.append(
                            f"timed {len(slot.result.walls)} time(s): --budget ran out"
                        )
                    else:
                        self.skipped.append(slot.layout)
                    self._retire(slot)
                    continue
                self.time_batch(slot, rnd)
        for slot in members:
            self.close(slot)

    def measure(self) -> None:
        base = self.base
        info = self.start(base)
        self.calibrate(base, info.get("warmup_per_task_s"))
        self.report_plan()
        for group in self.groups:
            self.run_group(group)
        self.close(base)

    def abort(self) -> None:
        LayoutHost.abort_all(self.live)
        self.live.clear()

    # --- the document -----------------------------------------------------------------------------

    def result(self, status: str = "complete") -> JobsResult | None:
        measured = [
            self.slots[lay].result
            for lay in self.plan
            if self.slots[lay].result is not None and self.slots[lay].result.walls
        ]
        if not measured or measured[0].layout != self.plan[0]:
            return None
        for r in measured:
            analysis.summarize(r, self.tasks, self.cores)
        warnings: list[str] = []
        analysis.compare(measured, self.cores, warnings)
        # other programs' CPUs averaged over every timed batch (weighted by its wall time)
        other = analysis.others_over_batches(*measured, min_wall_s=LOAD_PROBE_MIN_S)
        if other is not None and other >= OTHER_LOAD_WARN_SHARE * self.logical_cores:
            warnings.insert(
                0,
                f"other programs kept {other:.2f} of the {self.logical_cores} CPUs busy during the "
                "measurement (/proc/stat): layouts that need every core are understated",
            )
        if measured[0].wall_s < SHORT_BATCH_SECONDS:
            warnings.append(
                f"a serial batch took only {measured[0].wall_s * 1e3:.0f} ms: start-up and "
                "hand-over costs weigh in; give more --tasks (or none: it then calibrates to "
                f"about {TARGET_SERIAL_SECONDS:g} s)"
            )
        if self.skipped:
            warnings.append(
                "not measured, --budget ran out: " + ", ".join(lay.spec for lay in self.skipped)
            )
        contended = analysis.contention_warning(measured)
        if contended:
            warnings.append(contended)
        if status == "interrupted":
            warnings.append(f"interrupted: {len(measured)} of {len(self.plan)} layouts measured")
        naive = next(
            (r.threads_seen for r in measured if r.layout.threads is None and r.threads_seen), None
        )
        from blastune.facts import schedstat
        from blastune.facts.fingerprint import fingerprint

        # what the BLAS would run with if nobody set a count: the registry's thread variables
        from blastune.facts.environment import requested_threads

        source = "schedstat" if schedstat.available() else "load"
        return JobsResult(
            workload=self.workload,
            tasks=self.tasks,
            repeats=self.repeats,
            usable_cores=self.cores,
            default_threads=naive or requested_threads()[0] or self.cores,
            results=measured,
            fingerprint=fingerprint(),
            other_load_cores=other,
            warnings=warnings,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            status=status,
            contention=analysis.contention_record(
                source,
                ""
                if source == "schedstat"
                else "no per-thread schedstat here: contention judged from /proc/stat load",
            ),
            estimate_s=self.estimate_s,
            budget_s=self.budget.seconds,
            elapsed_s=self.budget.elapsed(),
        )

    def save(self, doc: JobsResult) -> None:
        if self.out is None:
            return
        import json

        from blastune.core.files import SaveFailed, keep_safe, write_output
        from blastune.errors import BlastuneError

        text = json.dumps(doc.to_dict(), indent=2, default=str) + "\n"
        try:
            write_output(self.out, text, what="results file")
        except BlastuneError as exc:  # a full disk: minutes of measuring are not thrown away
            kept = keep_safe(self.out, text)
            where = (
                f"the results are kept in {kept}"
                if kept
                else "the results could not be kept anywhere"
            )
            raise SaveFailed(f"{exc}; {where}", kept, doc) from None

    # --- the whole run ----------------------------------------------------------------------------

    def run(self) -> JobsResult:
        import contextlib

        from blastune.core.files import SaveFailed, check_output, output_lock
        import numpy  # noqa: F401  (the fingerprint names numpy's BLAS: the profile matches on it)

        check_memory(self.workload, self.groups)
        lock = contextlib.nullcontext()
        if self.out is not None:
            check_output(self.out, force=self.force, what="results file", option="force=True")
            lock = output_lock(self.out, "results file")
        with lock:
            try:
                with stop_on_signals(JobsInterrupted):
                    try:
                        self.measure()
                        raise_pending()  # a stop dropped on its way is not a complete run
                    except BaseException:
                        self.abort()
                        raise
            except JobsInterrupted as stop:
                partial = self.result("interrupted")
                if partial is not None and self.out is not None:
                    try:
                        self.save(partial)
                        stop.saved_to = self.out
                    except SaveFailed as failed:
                        stop.saved_to, stop.save_error = failed.fallback, str(failed)
                stop.result = partial
                raise
            doc = self.result("complete")
            self.save(doc)
        self.progress("done", {"elapsed_s": self.budget.elapsed()})
        return doc
