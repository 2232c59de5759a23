""" "Disturbed" and "unstable" are two judgements, each made in one place (documents/sweep.py) and
read by every renderer: the sweep table and its crossover line, the figures, the HTML report.

A point that was only unstable (its times never settled) was said to be "disturbed" by the sweep's
crossover line and by the report's crossover table (issues 17 and 19): nothing says other programs
caused it, and advice to re-check for that reason would send a user after a neighbour who was not
there.
"""

from __future__ import annotations

from blastune.advise.crossover import crossover_sizes
from blastune.present.sweep_rows import render_sweep
from blastune.documents.sweep import SweepDocument, is_disturbed
from blastune.present.report import _crossover_table, _sweep_table


def _doc(**flags) -> dict:
    """dot at 64 and 128, 1 and 2 threads; ``flags`` go on the 2-thread point at 128."""
    pts = []
    for size, (t1, t2) in {64: (1.0, 1.2), 128: (1.0, 0.6)}.items():
        for threads, t in ((1, t1), (2, t2)):
            p = {
                "op": "dot",
                "lib": "numpy",
                "size": size,
                "dtype": "float64",
                "threads": threads,
                "median_s": t,
                "spread": 0.001,
                "blas_op": True,
                "contended": False,
                "busy": False,
                "unstable": False,
            }
            if size == 128 and threads == 2:
                p.update(flags)
            pts.append(p)
    return {"schema": "blastune.sweep/1", "points": pts}


def test_the_rule_for_disturbed():
    assert is_disturbed(True, None) and is_disturbed(True, False)
    assert not is_disturbed(False, None) and not is_disturbed(None, None)
    assert is_disturbed(None, True)  # a 0.1.0 file: its 'busy' flag is the judgement
    assert not is_disturbed(False, True)  # a judgement made: 'busy' does not override it


def test_an_unstable_point_is_not_disturbed_anywhere():
    data = _doc(unstable=True)
    doc = SweepDocument.from_dict(data)
    (p,) = [p for p in doc.points if p.unstable]
    assert not p.disturbed and p.doubtful
    (c,) = crossover_sizes(doc)
    assert (c.disturbed, c.unstable) == (False, True)
    assert c.caveat() == "some points unstable: re-check"
    line = [
        ln
        for ln in render_sweep(doc, crossovers=crossover_sizes(doc)).splitlines()
        if ln.startswith("crossover:")
    ]
    assert line == [
        "crossover: dot: more threads pay off at n >= 128 (some points unstable: re-check)"
    ]
    assert "disturbed" not in _crossover_table(doc) and "unstable" in _crossover_table(doc)
    assert "contended" not in _sweep_table(doc)


def test_a_contended_point_is_disturbed_everywhere():
    data = _doc(contended=True, busy=True, wait_pct=40.0)
    doc = SweepDocument.from_dict(data)
    (c,) = crossover_sizes(doc)
    assert (c.disturbed, c.unstable) == (True, False)
    assert c.to_dict()["caveat"] == "some points disturbed: re-check"
    text = render_sweep(doc, crossovers=crossover_sizes(doc))
    assert "(some points disturbed: re-check)" in text and "contended" in text
    assert "some points disturbed" in _crossover_table(doc)
    # the report names it once ('contended'), not twice ('contended busy')
    assert "contended" in _sweep_table(doc) and "busy" not in _sweep_table(doc)


def test_clean_points_carry_no_caveat():
    doc = SweepDocument.from_dict(_doc())
    (c,) = crossover_sizes(doc)
    assert c.caveat() is None and c.to_dict()["caveat"] is None
    assert "re-check" not in render_sweep(doc, crossovers=[c])


def test_advice_and_comparison_ask_the_same_rule():
    """recommend's noise check and compare's trust read SweepPoint.disturbed: a 0.1.0 point's
    'busy' counts, a judged point's stale 'busy' beside contended=False does not."""
    from blastune.advise.compare import _sweep_side
    from blastune.advise.rules import point_noise

    def point(**flags):
        return SweepDocument.from_dict(_doc(**flags)).points[-1]

    old = point(contended=None, busy=True)
    judged = point(contended=False, busy=True)
    assert "busy" in point_noise(old) and _sweep_side(old).disturbed
    assert point_noise(judged) is None and _sweep_side(judged).disturbed is None
    assert "contended" in point_noise(point(contended=True, wait_pct=30.0))
