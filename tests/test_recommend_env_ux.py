"""What a new user tripped over (issue 19) and the cosmetic round of issue 20, for recommend, env and
profile: exports alone on stdout (a real bash evaluates them), one line on what the profile kept,
env --auto saying when no profile answered, one message for every count, --shell "" refused alike,
memory sizes in sensible units, a relative XDG_CACHE_HOME ignored. Through the console script."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.conftest import blastune_env as _env
from tests.conftest import run_blastune as _blastune

V010 = Path(__file__).resolve().parent / "data" / "v0_1_0"
BLASTUNE = shutil.which("blastune")
pytestmark = pytest.mark.skipif(BLASTUNE is None, reason="blastune console script not installed")
EXPORT = re.compile(r"export [A-Z_]+=\d+")


def _fingerprint(tmp_path) -> dict:
    r = subprocess.run(
        [
            shutil.which("python") or "python",
            "-c",
            "import json; from blastune.control.profile import profile_fingerprint as f;"
            "print(json.dumps(f()))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _jobs_file(tmp_path, noisy_serial: bool = False) -> Path:
    """0.1.0's jobs file made clean (every batch at its median) and this machine's; with
    ``noisy_serial`` the serial layouts (the advice for 1 job) are unstable."""
    d = json.loads((V010 / "jobs.json").read_text())
    d["spread_definition"] = "se_median"
    for r in d["results"]:
        m = statistics.median(r["walls"])
        r.update(walls=[m, m, m], wall_s=m, spread=0.0, unstable=False, contended=False)
        if noisy_serial and r["layout"]["executor"] == "serial":
            r.update(spread=0.5, unstable=True)
    d["fingerprint"] = _fingerprint(tmp_path)
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(d))
    return path


def test_eval_of_recommend_in_a_real_bash_sets_the_threads(tmp_path):
    """0.2.0: the explanation went to stdout with the exports, so eval "$(...)" ran prose as commands."""
    f = _jobs_file(tmp_path)
    env = _env(tmp_path, OPENBLAS_NUM_THREADS="7")  # what the eval must change (prose made it fail)
    bash = subprocess.run(
        [
            "bash",
            "-c",
            f'eval "$(blastune recommend --from {f} -j 2)"; echo "threads=$OPENBLAS_NUM_THREADS"',
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert bash.returncode == 0, bash.stderr
    assert bash.stdout == "threads=1\n", bash.stdout
    assert "command not found" not in bash.stderr and "For 2 concurrent job(s)" in bash.stderr


def test_recommend_prints_exports_alone_on_stdout_and_one_profile_line(tmp_path):
    f = _jobs_file(tmp_path)
    r = _blastune(["recommend", "--from", f, "-j", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() and all(
        EXPORT.fullmatch(line) for line in r.stdout.splitlines()
    ), r.stdout
    assert "BLAS threads per job: 1" in r.stderr and "Why:" in r.stderr
    assert re.search(
        r"^profile: saved 1 job\(s\) -> \d+ thread\(s\), 2 job\(s\) -> 1 thread\(s\) in ",
        r.stderr,
        re.M,
    ), r.stderr
    assert max(map(len, r.stderr.splitlines())) <= 100


def test_recommend_says_once_what_it_saved_and_what_it_did_not(tmp_path):
    """0.2.0: "profile saved: PATH" then "notice: not saved in the profile ... 1 job(s)" (another
    entry): read as a contradiction. Now each profile line says which job counts."""
    f = _jobs_file(tmp_path, noisy_serial=True)
    r = _blastune(["recommend", "--from", f, "-j", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stderr.split())  # unwrapped
    assert "profile: saved 2 job(s) -> 1 thread(s) in " in text
    assert "profile: not saved, from noisy measurements: 1 job(s)" in text
    assert "profile saved:" not in text and "notice: not saved in the profile" not in text


def test_an_unwritable_cache_is_not_announced_as_saved(tmp_path):
    """0.2.0: "profile entry ... saved marked noisy" and then "profile not saved"."""
    f = _jobs_file(tmp_path, noisy_serial=True)
    (tmp_path / "afile").write_text("")
    r = _blastune(
        ["recommend", "--from", f, "-j", "2", "--accept-noisy"],
        tmp_path,
        XDG_CACHE_HOME=str(tmp_path / "afile"),
    )
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stderr.split())
    assert "saved marked noisy" not in text and "profile: saved" not in text
    assert "profile: not saved: cannot save the profile in " in text


def test_recommend_from_a_file_refuses_op_and_size(tmp_path):
    """0.2.0: `recommend --from F --op inv` ignored --op silently."""
    f = _jobs_file(tmp_path)
    r = _blastune(["recommend", "--from", f, "--op", "inv"], tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (
        "blastune: error: --op chooses the built-in measurement; with --from the file says "
        "what was measured: drop it\n"
    )


def test_env_auto_without_a_profile_says_so_on_stderr(tmp_path):
    """0.2.0: it quietly fell back to cores // jobs."""
    r = _blastune(["env", "--auto", "-j", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(EXPORT.fullmatch(line) for line in r.stdout.splitlines())
    text = " ".join(r.stderr.split())
    assert text.startswith("blastune: notice: no saved profile for this machine: using ")
    assert "// 2 job(s) = " in text and "`blastune recommend --jobs 2` measures it" in text
    # with a saved entry for 2 jobs, nothing to say
    f = _jobs_file(tmp_path)
    assert _blastune(["recommend", "--from", f, "-j", "2"], tmp_path).returncode == 0
    r = _blastune(["env", "--auto", "-j", "2"], tmp_path)
    assert r.returncode == 0 and r.stderr == "" and "export OPENBLAS_NUM_THREADS=1" in r.stdout


def test_a_directory_in_place_of_the_profile_is_not_promised_to_profile_clear(tmp_path):
    """0.2.0: the warning said `profile clear` removes it; `profile clear` said there was no profile."""
    r = _blastune(["profile", "path"], tmp_path)
    path = Path(r.stdout.strip())
    path.mkdir(parents=True)
    r = _blastune(["env", "--auto"], tmp_path)
    assert r.returncode == 0
    assert (
        "`blastune profile clear` removes it" not in r.stderr
        and "move it away yourself" in r.stderr
    )
    r = _blastune(["profile", "clear"], tmp_path)
    assert r.returncode == 0 and path.is_dir()
    squeeze = lambda t: "".join(t.split())  # noqa: E731  (wrapped at COLUMNS, inside the path too)
    assert squeeze(f"left {path} alone: a directory, not a profile blastune wrote") in squeeze(
        r.stderr
    )


def test_profile_show_fits_columns(tmp_path):
    """0.2.0: `profile show` ignored COLUMNS (a 137-character line at COLUMNS=100)."""
    f = _jobs_file(tmp_path, noisy_serial=True)
    assert (
        _blastune(["recommend", "--from", f, "-j", "2", "--accept-noisy"], tmp_path).returncode == 0
    )
    r = _blastune(["profile", "show"], tmp_path, COLUMNS="60")
    assert r.returncode == 0 and "noisy:" in r.stdout
    assert max(map(len, r.stdout.splitlines())) <= 60, r.stdout


def test_memory_sizes_are_in_sensible_units(tmp_path):
    """0.2.0: "needs about 171798691680.0 GiB" (and "0 MiB" for small needs)."""
    from blastune.core.counts import format_bytes

    assert [format_bytes(n) for n in (0, 300, 1536, 3 * 2**20, 22.5 * 2**30, 1.6e20)] == [
        "0 B",
        "300 B",
        "1.5 KiB",
        "3 MiB",
        "22.5 GiB",
        "139 EiB",
    ]
    r = _blastune(["jobs", "--size", "2147483647", "-q"], tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert re.search(r"needs about \d+(\.\d+)? EiB per worker", r.stderr), r.stderr
    assert "e+" not in r.stderr and ".0 GiB" not in r.stderr


def test_a_relative_xdg_cache_home_is_ignored(tmp_path):
    """The XDG spec: a relative path in these variables is invalid and must be ignored."""
    home = tmp_path / "home"
    home.mkdir()
    r = _blastune(["profile", "path"], tmp_path, XDG_CACHE_HOME="relative/cache", HOME=str(home))
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).parent == home / ".cache" / "blastune"
