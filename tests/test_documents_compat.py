"""Documents written by 0.1.0 (tests/data/v0_1_0): today's info and doctor output keeps every key
they had (new keys allowed, none lost), and a saved doctor report loads into the very class
``blastune.doctor()`` returns. Sweep, jobs and profile have theirs beside their own tests.

No command reads a saved info document back (``blastune report`` gathers today's facts), so info
has no reader: its keys are what is held here."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from blastune.documents.base import DocumentError
from blastune.documents.doctor import DoctorReport
from tests.conftest import REPO, child_env

SAMPLES = REPO / "tests" / "data" / "v0_1_0"
BLASTUNE = shutil.which("blastune")
# Mappings whose keys are data (variable names, package names), not schema
DATA_KEYED = {"env", "packages", "counts"}


def key_paths(value, path="") -> set[str]:
    """Every key path in a document: lists contribute the union of their items' keys."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{path}.{k}" if path else k
            out.add(p)
            if k not in DATA_KEYED:
                out |= key_paths(v, p)
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, path + "[]")
    return out


def sample(kind: str) -> dict:
    return json.loads((SAMPLES / f"{kind}.json").read_text())


def test_the_0_1_0_doctor_report_loads_and_round_trips():
    data = sample("doctor")
    report = DoctorReport.from_dict(data, "doctor.json")
    assert report.to_dict() == data
    assert report.exit_status() == data["exit_status"] and report.tally().endswith("10 ok")


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
@pytest.mark.parametrize("kind", ["info", "doctor"])
def test_todays_output_keeps_every_0_1_0_key_and_loads(kind):
    proc = subprocess.run(
        [BLASTUNE, kind, "--json"], capture_output=True, text=True, timeout=180, env=child_env()
    )
    assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, proc.stderr
    today = json.loads(proc.stdout)
    old = key_paths(sample(kind))
    # a list empty in one run (warnings, notes) says nothing about its items' keys
    lost = {
        p
        for p in old - key_paths(today)
        if not any(p.startswith(q + "[]") for q in _empty_lists(today))
    }
    assert not lost, f"keys of 0.1.0's {kind} document missing today: {sorted(lost)}"
    if kind == "doctor":  # what doctor --json printed is what the report reads back
        assert DoctorReport.from_dict(today, f"{kind} --json").to_dict() == today


def _empty_lists(doc, path="") -> set[str]:
    out = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out |= _empty_lists(v, f"{path}.{k}" if path else k)
    elif isinstance(doc, list):
        if not doc:
            out.add(path)
        for item in doc:
            out |= _empty_lists(item, path + "[]")
    return out


@pytest.mark.parametrize(
    "where, bad, words",
    [
        (("findings", 0, "severity"), "fatal", "findings[0].severity: expected one of"),
        (("jobs",), -1, "jobs: expected a whole number"),
        (("counts", "ok"), "ten", "counts.ok: expected a whole number"),
        (("probe", "ok"), "yes", "probe.ok: expected true or false"),
    ],
)
def test_a_malformed_doctor_report_is_one_line_naming_the_field(where, bad, words):
    data = sample("doctor")
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = bad
    with pytest.raises(DocumentError) as err:
        DoctorReport.from_dict(data, "doctor.json")
    msg = str(err.value)
    assert msg.startswith("doctor.json: malformed document: ") and words in msg and "\n" not in msg


def test_a_newer_doctor_report_is_refused_not_guessed_at():
    data = {**sample("doctor"), "schema": "blastune.doctor/2"}
    with pytest.raises(DocumentError, match="schema blastune.doctor/2 is not supported"):
        DoctorReport.from_dict(data, "doctor.json")
