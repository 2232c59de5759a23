"""Hand-edited and hostile documents (issue 20, items 8-10): every reader -- sweep --resume, plot,
report, compare, recommend, the profile -- goes through the one validation of ``documents/``, and
refuses in one line naming the file and the field, exit status 2; a thread count has one bound
(``core.counts.MAX_THREADS``) everywhere. Run through the installed console script."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import blastune_env as _env
from tests.conftest import run_blastune as _blastune

V010 = Path(__file__).resolve().parent / "data" / "v0_1_0"
BLASTUNE = shutil.which("blastune")
needs_script = pytest.mark.skipif(BLASTUNE is None, reason="blastune console script not installed")


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blastune: error: "), r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _sweep() -> dict:
    return json.loads((V010 / "sweep.json").read_text())


def _write(tmp_path, name, doc) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# --- item 8: figures that cannot be, refused by the loader (plot/report crashed with exit 1) ----------


def _median_1e308(d):
    d["points"][0]["median_s"] = 1e308


@needs_script
@pytest.mark.parametrize(
    "command",
    [
        ["plot", "{f}", "-o", "x.svg"],
        ["report", "{f}", "-o", "x.html"],
        ["compare", "{f}", "{f}"],
        ["recommend", "--from", "{f}", "--no-save-profile"],
    ],
)
def test_a_median_of_1e308_is_refused_by_every_reader(tmp_path, command):
    """0.2.0: plot and report died with "internal error: ValueError: 'yerr' must not contain
    negative values", exit 1; the loader and --resume took the file."""
    d = _sweep()
    _median_1e308(d)
    f = _write(tmp_path, "f.json", d)
    r = _blastune([a.format(f=f) for a in command], tmp_path)
    _one_line_error(r, f"{f}: malformed document: points[0].median_s")
    assert not (tmp_path / "x.svg").exists() and not (tmp_path / "x.html").exists()


HOSTILE = [  # (field of points[0], value, what the message names)
    ("median_s", 1e308, "median_s"),
    ("median_s", 5e-324, "median_s"),  # FLOP/s from it would be inf
    ("max_s", 1e308, "max_s"),
    ("q1_s", 1.0, "q1_s"),  # above the median: quartiles out of order
    ("q3_s", 1e-9, "median_s"),  # below the median
    ("min_s", 10.0, "min_s"),
    ("mean_s", 1e6, "mean_s"),
    ("samples_s", [1e308], "samples_s[0]"),
    ("threads", 2**31, "threads"),
    ("threads_ran", 2**31, "threads_ran"),
    ("size", 2**40, "size"),
]


@needs_script
@pytest.mark.parametrize("field,value,named", HOSTILE)
def test_hostile_times_and_counts_never_reach_plot(tmp_path, field, value, named):
    d = _sweep()
    d["points"][0][field] = value
    f = _write(tmp_path, "f.json", d)
    r = _blastune(["plot", f, "-o", "x.svg"], tmp_path)
    _one_line_error(r, f"points[0].{named}")


def test_the_loader_keeps_every_real_0_1_0_file():
    """The new checks (order of quartiles, bounds, names) refuse nothing blastune ever wrote."""
    from blastune.documents.jobs import JobsResult
    from blastune.documents.sweep import SweepDocument

    here = Path(__file__).resolve().parent / "data"
    for path in sorted(here.glob("*/*.json")):
        data = json.loads(path.read_text())
        schema = data.get("schema", "") if isinstance(data, dict) else ""
        if schema.startswith("blastune.sweep/"):
            SweepDocument.from_dict(data, str(path))
        elif schema.startswith("blastune.jobs/"):
            JobsResult.from_dict(data, str(path))


# --- item 10: hand-edited fields, refused alike by --resume and every reader ----------------------------


def _dup(d):
    d["points"].append(copy.deepcopy(d["points"][0]))


EDITS = [
    ("duplicate", _dup, "points[8]: the same point (dot, numpy, 100, float64, 1) as points[0]"),
    ("fft", lambda d: d["points"][0].update(op="fft"), "points[0].op: expected one of dot,"),
    (
        "int8",
        lambda d: d["points"][0].update(dtype="int8"),
        "points[0].dtype: expected one of float32,",
    ),
    (
        "torch",
        lambda d: d["points"][0].update(lib="torch"),
        "points[0].lib: expected one of numpy, scipy",
    ),
    (
        "seed",
        lambda d: d["settings"].update(seed="x"),
        "settings.seed: expected a whole number from 0 to",
    ),
    ("seed<0", lambda d: d["settings"].update(seed=-1), "settings.seed"),
    ("cores", lambda d: d["fingerprint"].update(usable_cores="lots"), "fingerprint.usable_cores"),
    ("cores0", lambda d: d["cpu"].update(usable_cores=0), "cpu.usable_cores"),
    ("grid", lambda d: d["grid"].update(ops=["fft"]), "grid.ops[0]"),
]


@needs_script
@pytest.mark.parametrize("name,edit,message", EDITS, ids=[e[0] for e in EDITS])
def test_sweep_resume_refuses_a_hand_edited_file_and_leaves_it(tmp_path, name, edit, message):
    """0.2.0: --resume kept duplicate points and op "fft", and silently replaced a bad seed or
    usable_cores with fresh values. Now it refuses before measuring, and the file is untouched."""
    d = _sweep()
    edit(d)
    f = _write(tmp_path, "r.json", d)
    before = f.read_bytes()
    r = _blastune(
        ["sweep", "--resume", "-o", f, "--size", "100", "-t", "1", "-b", "1", "-q"], tmp_path
    )
    _one_line_error(r, f"{f}: malformed document: {message}")
    assert f.read_bytes() == before


@needs_script
@pytest.mark.parametrize(
    "command",
    [
        ["plot", "{f}", "-o", "x.svg"],
        ["report", "{f}", "-o", "x.html"],
        ["compare", "{f}", "{f}"],
        ["recommend", "--from", "{f}"],
    ],
)
def test_a_newer_schema_is_refused_by_every_reader_alike(tmp_path, command):
    """0.2.0: plot and report drew a blastune.sweep/2 file that compare and recommend refused."""
    d = _sweep()
    d["schema"] = "blastune.sweep/2"
    f = _write(tmp_path, "f.json", d)
    r = _blastune([a.format(f=f) for a in command], tmp_path)
    _one_line_error(
        r, f"{f}: schema blastune.sweep/2 is not supported (this blastune reads version 1)"
    )


def test_a_newer_jobs_schema_is_refused_by_the_model_itself():
    from blastune.documents.base import DocumentError
    from blastune.documents.jobs import JobsResult

    d = json.loads((V010 / "jobs.json").read_text())
    d["schema"] = "blastune.jobs/2"
    with pytest.raises(DocumentError, match="schema blastune.jobs/2 is not supported"):
        JobsResult.from_dict(d, "j.json")


def test_jobs_workload_names_are_what_blastune_runs():
    from blastune.documents.base import DocumentError
    from blastune.documents.jobs import JobsResult

    for field, value in (("name", "fft"), ("dtype", "int8"), ("lib", "torch")):
        d = json.loads((V010 / "jobs.json").read_text())
        d["workload"][field] = value
        with pytest.raises(DocumentError, match=rf"workload\.{field}: expected one of"):
            JobsResult.from_dict(d, "j.json")


def test_the_documents_vocabulary_is_measure_ops():
    """documents/ cannot import measure/ (layers): its copy of the names must not drift."""
    from blastune.documents import common
    from blastune.measure import ops, timing

    assert (
        common.OP_NAMES == tuple(ops.OPS)
        and common.DTYPES == ops.DTYPES
        and common.LIBS == ops.LIBS
    )
    assert common.MAX_REPEATS == timing.MAX_REPEATS


# --- item 9: one bound for thread counts ------------------------------------------------------------


def _profile_with_threads(tmp_path, threads: int) -> Path:
    """This machine's profile (its real fingerprint), with one entry for 2 jobs."""
    r = subprocess.run(
        [
            shutil.which("python") or "python",
            "-c",
            "import json; from blastune.control.profile import profile_fingerprint, profile_path;"
            "print(json.dumps([profile_fingerprint(), str(profile_path())]))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    fp, path = json.loads(r.stdout)
    entry = {
        "threads": threads,
        "layout": "process:2x1",
        "reason": "hand-edited",
        "source": "",
        "measured": "2026-01-01T00:00:00+00:00",
        "noisy": None,
        "extrapolated": False,
    }
    doc = {
        "schema": "blastune.profile/2",
        "fingerprint": fp,
        "created": "",
        "updated": "",
        "workloads": {"op:numpy:dot:300:float64": {"label": "dot", "entries": {"2": entry}}},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc))
    return Path(path)


@needs_script
def test_a_profile_entry_of_2_to_the_31_threads_is_warned_of_and_env_falls_back(tmp_path):
    """0.2.0: the profile allowed up to 2**63-1, then env --auto -j 2 exited 2 instead of warning
    and falling back as documented."""
    path = _profile_with_threads(tmp_path, 2**31)
    r = _blastune(["env", "--auto", "-j", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "export OPENBLAS_NUM_THREADS=" in r.stdout and str(2**31) not in r.stdout
    assert r.stderr.startswith("blastune: warning: the saved profile") and str(path) in r.stderr
    assert "entries.2.threads: expected a whole number from 1 to 2147483647" in r.stderr


def test_limit_auto_never_passes_2_to_the_31_to_the_blas(tmp_path):
    """0.2.0: limit("auto", jobs=2) handed 2**31 to OpenBLAS (a C int: it arrives as garbage)."""
    _profile_with_threads(tmp_path, 2**31)
    code = (
        "import warnings, blastune, numpy; warnings.simplefilter('ignore')\n"
        "lim = blastune.limit('auto', jobs=2)\n"
        "with lim:\n"
        "    print(lim.n, max(blastune.get_threads().values()))\n"
    )
    r = subprocess.run(
        [shutil.which("python") or "python", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    asked, got = map(int, r.stdout.split())  # the count asked of the BLAS, and what it then runs
    assert 1 <= asked <= (os.cpu_count() or 1) and 1 <= got <= (os.cpu_count() or 1), r.stdout


def test_a_thread_count_past_a_c_int_is_refused_in_every_document():
    from blastune.documents.base import DocumentError
    from blastune.documents.jobs import JobsResult
    from blastune.documents.sweep import SweepDocument

    d = json.loads((V010 / "jobs.json").read_text())
    d["results"][1]["layout"]["threads"] = 2**31
    with pytest.raises(
        DocumentError,
        match=r"results\[1\]\.layout\.threads: expected a whole number from 1 "
        r"to 2147483647",
    ):
        JobsResult.from_dict(d, "j.json")
    s = _sweep()
    s["grid"]["threads"] = [1, 2**31]
    with pytest.raises(DocumentError, match=r"grid\.threads\[1\]"):
        SweepDocument.from_dict(s, "s.json")


# --- plot never crashes on what the loader accepted ---------------------------------------------------


def _numeric_leaves(d, path=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _numeric_leaves(v, path + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d[:1]):
            yield from _numeric_leaves(v, path + (i,))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        yield path


@pytest.mark.parametrize("name", ["sweep.json", "jobs.json"])
def test_plot_never_ends_in_an_internal_error_on_extreme_figures(tmp_path, name):
    """Every number of one point (sweep) or one layout (jobs) set to 1e308 or 5e-324 in turn: the
    loader refuses it (exit 2) or plot draws it (exit 0) -- never exit 1 (a found defect: walls of
    5e-324 made an infinite rate and 'Axis limits cannot be NaN or Inf')."""
    from typer.testing import CliRunner

    from blastune.cli import app

    base = json.loads((V010 / name).read_text())
    part = "points" if name == "sweep.json" else "results"
    runner = CliRunner()
    crashed = []
    for path in _numeric_leaves(base[part][0], (part, 0)):
        for value in (1e308, 5e-324):
            d = copy.deepcopy(base)
            node = d
            for p in path[:-1]:
                node = node[p]
            node[path[-1]] = value
            f = _write(tmp_path, "f.json", d)
            r = runner.invoke(app, ["plot", str(f), "-o", str(tmp_path / "x.svg"), "--force"])
            if r.exit_code not in (0, 2):
                crashed.append((path, value, r.exit_code, (r.stderr or "")[-200:]))
    assert not crashed, crashed
