"""Documents written by 0.1.0 (tests/data/v0_1_0) still load through the typed models, and today's
output keeps every key they had (new keys allowed, none lost). This file holds the info and doctor
parts; sweep, jobs and profile have theirs beside their own tests."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from blastune.documents.base import DocumentError
from blastune.documents.doctor import DoctorDocument
from blastune.documents.info import InfoDocument
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


@pytest.mark.parametrize("kind, model", [("info", InfoDocument), ("doctor", DoctorDocument)])
def test_the_0_1_0_sample_loads_and_round_trips(kind, model):
    data = sample(kind)
    doc = model.from_dict(data, f"{kind}.json")
    assert doc.to_dict() == data


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
@pytest.mark.parametrize("kind, model", [("info", InfoDocument), ("doctor", DoctorDocument)])
def test_todays_output_keeps_every_0_1_0_key_and_loads(kind, model):
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
    doc = model.from_dict(today, f"{kind} --json")
    assert doc.to_dict() == today  # later additions kept as they came


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
    "kind, model, where, bad, words",
    [
        (
            "info",
            InfoDocument,
            ("cpu", "usable_cores"),
            "two",
            "cpu.usable_cores: expected a whole number",
        ),
        ("info", InfoDocument, ("loaded", 0, "num_threads"), True, "loaded[0].num_threads"),
        (
            "doctor",
            DoctorDocument,
            ("findings", 0, "severity"),
            "fatal",
            "findings[0].severity: expected one of",
        ),
        ("doctor", DoctorDocument, ("jobs",), -1, "jobs: expected a whole number"),
    ],
)
def test_a_malformed_document_is_one_line_naming_the_field(kind, model, where, bad, words):
    data = sample(kind)
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = bad
    with pytest.raises(DocumentError) as err:
        model.from_dict(data, f"{kind}.json")
    msg = str(err.value)
    assert msg.startswith(f"{kind}.json: malformed document: ") and words in msg and "\n" not in msg
