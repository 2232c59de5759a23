"""The saved profile: typed model (0.1.0 files load), entries per workload and job count, a broken
cache reported as the cache's fault, concurrent writers, `blastune profile show | clear | path`, and
`recommend --jobs 8` -> `env --auto --jobs 8` through the real console script and a real bash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.control.profile import (
    ProfileError,
    auto_threads,
    profile_fingerprint,
    profile_path,
    read_profile,
    save_advice,
)
from blastune.documents.base import DocumentError
from blastune.documents.profile import Profile, ProfileEntry
from tests.conftest import REPO, child_env

V010 = Path(__file__).resolve().parent / "data" / "v0_1_0"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _env(tmp_path):
    env = child_env(threads=None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def _blastune(args, tmp_path, **kw):
    return subprocess.run(
        ["blastune", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path),
        cwd=tmp_path,
        **kw,
    )


def _entry(jobs, threads, noisy=None, measured="2026-01-01T00:00:00+00:00"):
    return ProfileEntry(
        jobs=jobs,
        threads=threads,
        layout=f"process:{jobs}x{threads}",
        reason="test",
        measured=measured,
        noisy=noisy,
    )


# --- the model -----------------------------------------------------------------------------------------


def test_a_0_1_0_profile_loads_and_is_used(tmp_path):
    data = json.loads((V010 / "profile.json").read_text())
    p = Profile.from_dict(data, "profile.json")
    assert {j: e.threads for j, e in p.workloads["unrecorded"].entries.items()} == {1: 2, 2: 1}
    # the same file on this machine (its fingerprint made ours): env --auto and limit("auto") use it
    data["fingerprint"] = profile_fingerprint()
    profile_path().parent.mkdir(parents=True)
    profile_path().write_text(json.dumps(data))
    assert (
        auto_threads(2) == (1, auto_threads(2)[1])
        and "saved profile for 2 job(s) of unrecorded" in auto_threads(2)[1]
    )
    # saving into it upgrades it to profile/2 and keeps the 0.1.0 entries
    save_advice("op:numpy:dot:300:float64", "numpy dot 300x300 float64", {4: _entry(4, 1)})
    saved = json.loads(profile_path().read_text())
    assert saved["schema"] == "blastune.profile/2"
    assert set(saved["workloads"]) == {"unrecorded", "op:numpy:dot:300:float64"}


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(entries=[1, 2]), "entries: expected an object, got list"),
        (lambda d: d["entries"]["1"].update(threads=True), "entries.1.threads"),
        (lambda d: d["entries"].update({"x": {"threads": 1}}), "expected a number of jobs"),
        (lambda d: d.update(schema="blastune.profile/7"), "schema"),
    ],
)
def test_malformed_profiles_name_the_field(mutate, field):
    data = json.loads((V010 / "profile.json").read_text())
    mutate(data)
    with pytest.raises(DocumentError, match="p.json: malformed document") as e:
        Profile.from_dict(data, "p.json")
    assert field in str(e.value)


def test_noisy_never_replaces_clean_and_workloads_stay_apart():
    p = Profile(fingerprint={"id": "x"}, created="", updated="")
    assert p.merge("op:dot", "dot", {2: _entry(2, 1)}) == {}
    kept = p.merge(
        "op:dot", "dot", {2: _entry(2, 2, noisy="contended", measured="2027-01-01T00:00:00+00:00")}
    )
    assert (
        "kept the clean entry for 2 job(s)" in kept[2]
        and p.workloads["op:dot"].entries[2].threads == 1
    )
    p.merge("func:m:f", "m:f(i)", {2: _entry(2, 2, measured="2027-01-01T00:00:00+00:00")})
    assert p.workloads["op:dot"].entries[2].threads == 1  # the func did not replace dot
    w, e = p.choose(2)
    assert (w.key, e.threads) == ("func:m:f", 2)  # the newest clean entry is used ...
    assert p.choose(2, "op:dot")[1].threads == 1  # ... unless a workload is named
    p.merge("op:dot", "dot", {2: _entry(2, 2, measured="2028-01-01T00:00:00+00:00")})
    assert p.workloads["op:dot"].entries[2].threads == 2  # a newer clean one does replace


# --- a broken cache is the cache's fault ---------------------------------------------------------------


def _corrupt_profile():
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads((V010 / "profile.json").read_text())
    data["fingerprint"] = profile_fingerprint()
    data["entries"] = [1, 2]
    path.write_text(json.dumps(data))
    return path


def test_corrupt_profile_env_auto_recommend_and_jobs(tmp_path):
    """0.1.0: env --auto crashed (exit 1), recommend --from good.json blamed good.json, jobs threw its
    measurement away. Now: the cache is named as the culprit and nothing else is lost."""
    path = _corrupt_profile()
    before = path.read_bytes()
    e = _blastune(["env", "--auto", "--jobs", "2"], tmp_path)
    assert e.returncode == 0, e.stderr
    assert "export OPENBLAS_NUM_THREADS=" in e.stdout
    assert (
        e.stderr.startswith("blastune: warning: ")
        and str(path) in e.stderr
        and "profile clear" in e.stderr
    )
    assert e.stderr.count("\n") == 1
    j = _blastune(["env", "--auto", "--json"], tmp_path)
    assert str(path) in json.loads(j.stdout)["reason"]

    good = tmp_path / "good.json"
    good.write_text((V010 / "sweep.json").read_text())
    r = _blastune(
        ["recommend", "--from", str(good), "--jobs", "1", "--accept-noisy", "--json"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    notice = next(n for n in json.loads(r.stdout)["notices"] if n.startswith("profile not saved"))
    assert str(path) in notice and "unreadable" in notice and str(good) not in notice

    out = tmp_path / "jobs.json"
    r = _blastune(
        [
            "jobs",
            "--op",
            "dot",
            "--size",
            "32",
            "--tasks",
            "20",
            "--layouts",
            "serial:1x1",
            "-r",
            "3",
            "-q",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["status"] == "complete" and "tasks/s" in r.stdout
    assert path.read_bytes() == before  # a hand edit is not overwritten: `profile clear` is the way
    s = _blastune(["profile", "show"], tmp_path)
    assert s.returncode == 2 and s.stderr.count("\n") == 1 and str(path) in s.stderr


def test_library_api_never_breaks_on_a_corrupt_profile(tmp_path):
    path = _corrupt_profile()
    n, why = auto_threads(1)
    assert n >= 1 and str(path) in why and "unreadable" in why
    with pytest.raises(ProfileError, match="unreadable"):
        read_profile()
    with pytest.raises(ProfileError, match="profile clear"):
        save_advice("func:test", "test", {1: _entry(1, 1)})


# --- concurrent writers ---------------------------------------------------------------------------------

WRITER = """
import sys
from blastune.control.profile import save_advice
from blastune.documents.profile import ProfileEntry
k = int(sys.argv[1])
for i in range(int(sys.argv[2])):
    e = ProfileEntry(i + 1, 1, "x", "w", "writer", measured="2026-01-01T00:00:00+00:00")
    save_advice(f"func:w{k}", "workload not recorded", {i + 1: e})
"""


def test_concurrent_writers_keep_each_others_entries(tmp_path):
    """Read-modify-write under the profile's lock: 6 processes x 15 saves, every entry survives."""
    writers, saves = 6, 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(k), str(saves)],
            env=_env(tmp_path),
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(writers)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    profile, _ = read_profile()
    got = {k: sorted(w.entries) for k, w in profile.workloads.items()}
    assert got == {f"func:w{k}": list(range(1, saves + 1)) for k in range(writers)}
    assert not list(profile_path().parent.glob(".*.lock")) and not list(
        profile_path().parent.glob("*.tmp")
    )


# --- blastune profile show | clear | path ---------------------------------------------------------------


def test_profile_path_show_clear(tmp_path):
    r = CliRunner().invoke(app, ["profile", "path"])
    assert r.exit_code == 0 and r.stdout.strip() == str(profile_path())
    d = json.loads(CliRunner().invoke(app, ["profile", "path", "--json"]).stdout)
    assert d == {"schema": "blastune.profile-path/1", "path": str(profile_path()), "exists": False}
    r = CliRunner().invoke(app, ["profile", "show"])
    assert r.exit_code == 0 and "no saved profile" in r.stdout
    save_advice("op:numpy:dot:300:float64", "numpy dot 300x300 float64", {2: _entry(2, 1)})
    r = CliRunner().invoke(app, ["profile", "show"])
    assert r.exit_code == 0 and "numpy dot 300x300 float64" in r.stdout and "1*" in r.stdout
    d = json.loads(CliRunner().invoke(app, ["profile", "show", "--json"]).stdout)
    assert d["auto"] == {"2": "op:numpy:dot:300:float64"} and d["exists"]
    # clear: only blastune's profile files go, each in one unlink; nothing is asked
    cache = profile_path().parent
    foreign = cache / "profile-0000000000000000.json"
    foreign.write_text("{}")
    keep = [cache / "notes.txt", cache / "profile-mine.json"]
    for k in keep:
        k.write_text("mine")
    r = _blastune(["profile", "clear"], tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == f"removed 2 saved profile(s) from {cache}\n", r.stdout
    assert all(k.exists() for k in keep) and not profile_path().exists() and not foreign.exists()
    d = json.loads(_blastune(["profile", "clear", "--json"], tmp_path).stdout)
    assert d["removed"] == []


def test_recommend_jobs_8_is_what_env_auto_jobs_8_uses(tmp_path):
    """0.1.0: `recommend --jobs 8` printed "profile saved", then `env --auto --jobs 8` said "the saved
    profile has no entry for 8 job(s)". The jobs file measured 2 workers; 8 jobs are extrapolated,
    saved as such, and used -- shown by `profile show` and by a real bash evaluating env --auto."""
    jobs = tmp_path / "jobs.json"
    r = _blastune(
        [
            "jobs",
            "--op",
            "dot",
            "--size",
            "32",
            "--tasks",
            "20",
            "--layouts",
            "serial:1x1,process:2x1",
            "-r",
            "3",
            "-q",
            "--no-save-profile",
            "--out",
            str(jobs),
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    r = _blastune(["recommend", "--from", str(jobs), "--jobs", "8", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["profile"] and rec["profile_entries"]["8"]["extrapolated"]
    show = json.loads(_blastune(["profile", "show", "--json"], tmp_path).stdout)
    key = show["auto"]["8"]
    entry = show["profile"]["workloads"][key]["entries"]["8"]
    assert (
        key == rec["workload"] == "op:numpy:dot:32:float64" and entry["threads"] == rec["threads"]
    )
    text = _blastune(["profile", "show"], tmp_path).stdout
    assert any(line.split()[4:6] == ["8", f"{entry['threads']}*"] for line in text.splitlines()), (
        text
    )
    bash = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$(blastune env --auto --jobs 8)"; echo "$OPENBLAS_NUM_THREADS"; '
            "blastune env --auto --jobs 8 --json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
    )
    assert bash.returncode == 0, bash.stderr
    first, rest = bash.stdout.split("\n", 1)
    assert first == str(entry["threads"])
    assert f"saved profile for 8 job(s) of {key}" in json.loads(rest)["reason"]


def test_profile_api_is_importable_without_the_cli():
    code = "import blastune.control.profile as p, sys; p.auto_threads(1); print('blastune.cli' in sys.modules)"
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_library_jobs_saves_the_profile_only_when_asked(tmp_path):
    """blastune.jobs(save_profile=True) does what `blastune jobs` does after measuring; without it
    the profile is left alone (the default for Python callers)."""
    import blastune
    from blastune.documents.jobs import Layout

    plan = [Layout("serial", 1, 1), Layout("process", 2, 1)]
    res = blastune.jobs(op="dot", size=32, tasks=20, layouts=plan, repeats=3)
    assert res.profile is None and res.profile_notices == []
    assert not os.path.lexists(profile_path())
    res = blastune.jobs(op="dot", size=32, tasks=20, layouts=plan, repeats=3, save_profile=True)
    if res.profile is None:  # a busy machine: noisy entries are left out, and said so
        assert any("from noisy measurements" in n for n in res.profile_notices), res.profile_notices
        return
    assert res.profile == str(profile_path())
    profile, _ = read_profile()
    saved = profile.workloads["op:numpy:dot:32:float64"].entries
    assert saved and all(e.source.startswith("jobs: 20 tasks") for e in saved.values())
    assert "profile" not in res.to_dict()  # the saved document keeps its schema


def test_library_jobs_shows_the_parameters_of_the_measurement():
    """help(blastune.jobs) lists run_jobs's parameters (it was run_jobs itself) and save_profile."""
    import inspect

    import blastune

    params = inspect.signature(blastune.jobs).parameters
    assert {"workload", "tasks", "layouts", "repeats", "out", "force", "budget"} <= set(params)
    assert params["save_profile"].default is False and "``budget``" in blastune.jobs.__doc__
