"""The nominal peak is built on the highest clock the CPU runs at, and says where it came from.

0.2.0 took the base clock first (cpufreq base_frequency, the "@ 2.10GHz" of the model name): on a
16-core Xeon the 1-thread dot then read "103% of peak". The trees here are small captures of the
files ``facts.cpu.peak_clock`` reads (``sys/devices/system/cpu/cpu*/cpufreq/*`` and
``proc/cpuinfo``), written the way Linux shows them (kHz in cpufreq, MHz in cpuinfo).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.facts.cpu import (
    PEAK_CLOCK_SOURCES,
    cpu_info,
    parse_cpuinfo,
    peak_clock,
    with_peak_clock,
)

XEON = "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"


def tree(root: Path, model: str, mhz=(), cpufreq: dict | None = None) -> list[dict]:
    """A capture: proc/cpuinfo with one block per CPU, and cpufreq files {cpu: {name: kHz text}}."""
    blocks = [
        f"processor\t: {i}\nmodel name\t: {model}\n" + (f"cpu MHz\t\t: {m}\n" if m else "")
        for i, m in enumerate(mhz or [None])
    ]
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc/cpuinfo").write_text("\n".join(blocks) + "\n")
    for cpu, files in (cpufreq or {}).items():
        d = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (d / name).write_text(text + "\n")
    (root / "sys/devices/system/cpu").mkdir(parents=True, exist_ok=True)
    return parse_cpuinfo((root / "proc/cpuinfo").read_text())


def clock_of(root: Path, model: str, **kw):
    return peak_clock(tree(root, model, **kw), model, root)


def test_the_highest_clock_wins_over_the_base_clock(tmp_path):
    # a hybrid-like spread: the P-cores boost higher than the others; the base is lower still
    got = clock_of(
        tmp_path,
        XEON,
        mhz=(2100.0, 2100.0),
        cpufreq={
            0: {"cpuinfo_max_freq": "3900000", "base_frequency": "2100000"},
            1: {"cpuinfo_max_freq": "4700000", "base_frequency": "2100000"},
        },
    )
    assert got == (4700.0, "cpufreq-max")


def test_the_fallbacks_in_order(tmp_path):
    base_only = {0: {"base_frequency": "2100000"}}
    assert clock_of(tmp_path / "a", XEON, cpufreq=base_only) == (2100.0, "cpufreq-base")
    assert clock_of(tmp_path / "b", XEON, mhz=(2095.1,)) == (2100.0, "model-name")
    # a VM: no cpufreq, no clock in the model name; the highest clock the hypervisor reports
    assert clock_of(tmp_path / "c", "AMD EPYC", mhz=(2596.1, 2601.5)) == (2601.5, "cpuinfo-mhz")
    assert clock_of(tmp_path / "d", "AMD EPYC") == (None, None)
    # a half-written or foreign file is skipped, not a crash
    garbage = {0: {"cpuinfo_max_freq": "garbage", "base_frequency": ""}}
    got = clock_of(tmp_path / "e", "AMD EPYC", mhz=(2596.1,), cpufreq=garbage)
    assert got == (2596.1, "cpuinfo-mhz")


def test_the_peak_is_built_on_that_clock_and_names_it(tmp_path):
    cpu = cpu_info()
    if not cpu.flops_per_cycle_fp64:
        pytest.skip("SIMD level unknown here: no peak to build")
    # the Xeon: AVX-512 at 32 FLOPs/cycle; base 2100 MHz gave 67.2 per core, which a
    # 1-thread dgemm beat (103%); the boost clock's peak is the bound it cannot pass
    avx512 = replace(cpu, simd="avx512", flops_per_cycle_fp64=32, usable_cores=16)
    base = with_peak_clock(avx512, 2100.0, "model-name")
    boost = {0: {"cpuinfo_max_freq": "3900000"}}
    top = with_peak_clock(avx512, *clock_of(tmp_path, XEON, cpufreq=boost))
    assert base.peak_gflops_per_core == 67.2 and top.peak_gflops_per_core == 124.8
    assert top.peak_gflops_total == pytest.approx(124.8 * 16, abs=0.1)
    assert top.peak_clock_source == "cpufreq-max" and top.clock_mhz == 3900.0
    assert PEAK_CLOCK_SOURCES["cpufreq-max"] in top.peak_basis and "x 3900 MHz" in top.peak_basis
    assert top.peak_basis.startswith("nominal:")


def test_info_says_which_clock_the_peak_uses():
    runner = CliRunner()
    data = json.loads(runner.invoke(app, ["info", "--json"]).stdout)
    c = data["cpu"]
    if c["clock_mhz"] is None:
        assert c["peak_clock_source"] is None
        return
    assert c["peak_clock_source"] in PEAK_CLOCK_SOURCES
    assert c["clock_source"] == PEAK_CLOCK_SOURCES[c["peak_clock_source"]]
    text = runner.invoke(app, ["info"], env={"COLUMNS": "100"}).stdout
    (line,) = [ln for ln in text.splitlines() if ln.startswith("peak FP64")]
    assert f"clock: {c['peak_clock_source']})" in line


def test_a_dgemm_above_the_stated_clock_raises_the_peak(monkeypatch):
    """A real one-thread dgemm on a CPU whose stated clock were 1/1000 of this one's: it proves a
    higher clock, and info builds the peak on that ("measured")."""
    import blastune.facts.info as facts_info

    cpu = cpu_info()
    if not cpu.peak_gflops_per_core:
        pytest.skip("no nominal peak on this machine (SIMD level or clock unknown)")
    slow = with_peak_clock(cpu, cpu.clock_mhz / 1000, cpu.peak_clock_source)
    monkeypatch.setattr(facts_info, "cpu_info", lambda: slow)
    got = facts_info.info(measure=True)
    assert got.clock.above_nominal is True
    assert got.cpu.peak_clock_source == "measured"
    assert got.cpu.clock_mhz == got.clock.clock_at_least_mhz
    assert got.cpu.peak_gflops_per_core >= got.clock.gflops_1thread - 0.1
    assert got.to_dict()["cpu"]["peak_clock_source"] == "measured"
