"""The op registry: LAWN 41 FLOP counts, memory estimates, inputs, and that each op computes what it says."""

from __future__ import annotations

import numpy as np
import pytest

import blastune
from blastune.measure import ops
from blastune.errors import BlastuneError


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    # 2 cores shared by several engineers: these tests check results, not speed
    with blastune.limit(1, api="all"):
        yield


BIG = 10_000  # large enough that the lower-order terms are < 0.1% of the leading one


@pytest.mark.parametrize(
    "name,lib,leading",
    [
        ("dot", "numpy", 2.0),
        ("det", "numpy", 2 / 3),
        ("solve", "numpy", 2 / 3),
        ("inv", "numpy", 8 / 3),  # numpy: gesv against the identity
        ("inv", "scipy", 2.0),  # scipy: getrf + getri
        ("cholesky", "numpy", 1 / 3),
        ("qr", "numpy", 8 / 3),  # geqrf 4/3 + orgqr 4/3
        ("svdvals", "numpy", 8 / 3),  # gebrd
        ("svd", "numpy", 20 / 3),  # nominal: gebrd + two back-transformations
        ("eigh", "numpy", 10 / 3),  # nominal: sytrd + ormtr
    ],
)
def test_leading_term_of_each_flop_count(name, lib, leading):
    f = ops.get_op(name).flops(BIG, "float64", lib)
    assert f == pytest.approx(leading * BIG**3, rel=2e-3)


def test_exact_small_counts_match_lawn41():
    # gemm counts m*n*k multiplies and m*n*k adds: 2 n^3 for real
    assert ops.get_op("dot").flops(3, "float64") == 54
    # getrf, n = 3: muls 0.5*27 - 27/6 + 4.5 - 4.5 + 2 = 11; adds 13.5 - 4.5 - 4.5 + 0.5 = 5
    assert ops.getrf_counts(3) == pytest.approx((11, 5))
    # potrf, n = 3: muls 27/6 + 4.5 + 1 = 10; adds 27/6 - 0.5 = 4
    assert ops.potrf_counts(3) == pytest.approx((10, 4))
    # getrs with one right-hand side: n^2 multiplies, n(n-1) adds
    assert ops.getrs_counts(4, 1) == (16, 12)
    assert ops.get_op("add").flops(10, "float64") == 100


def test_complex_counts_follow_the_lawn41_convention():
    # a complex multiply is 6 real FLOPs and a complex add 2: complex gemm = 4x real gemm
    n = 100
    assert ops.get_op("dot").flops(n, "complex128") == 4 * ops.get_op("dot").flops(n, "float64")
    muls, adds = ops.getrf_counts(n)
    assert ops.get_op("det").flops(n, "complex64") == pytest.approx(6 * muls + 2 * adds)
    assert ops.get_op("det").flops(n, "float32") == pytest.approx(muls + adds)
    assert ops.get_op("add").flops(n, "complex128") == 2 * n * n


def test_nominal_labels_only_on_data_dependent_ops():
    assert {name for name, op in ops.OPS.items() if op.nominal} == {"svd", "svdvals", "eigh"}
    assert ops.get_op("sin").flops(100, "float64") is None  # not a FLOP-counted op
    for op in ops.OPS.values():
        assert op.flop_source


def test_memory_estimate_scales_with_size_and_dtype():
    op = ops.get_op("dot")
    assert op.memory_bytes(2000, "float64") == pytest.approx(
        4 * op.memory_bytes(1000, "float64"), rel=1e-9
    )
    assert (
        op.memory_bytes(1000, "complex128")
        > op.memory_bytes(1000, "float64")
        > op.memory_bytes(1000, "float32")
    )
    # three float64 4000x4000 arrays are 384 MB: the estimate must cover them
    assert op.memory_bytes(4000, "float64") >= 3 * 8 * 4000**2


@pytest.mark.parametrize("dtype", ops.DTYPES)
def test_inputs_are_well_conditioned_and_spd_where_needed(dtype):
    rng = np.random.default_rng(1)
    a = ops.well_conditioned(rng, 150, dtype)
    assert a.dtype == np.dtype(dtype)
    assert np.linalg.cond(a.astype(np.complex128 if "complex" in dtype else np.float64)) < 5
    s = ops.spd(np.random.default_rng(2), 150, dtype)
    assert np.allclose(s, s.conj().T)
    w = np.linalg.eigvalsh(s.astype(np.complex128 if "complex" in dtype else np.float64))
    assert w.min() > 0.5 and w.max() / w.min() < 10


def test_inputs_come_from_a_fixed_seed():
    a = ops.get_op("inv").prepare(50, "float64")
    b = ops.get_op("inv").prepare(50, "float64")
    assert np.array_equal(a.args[0], b.args[0])
    c = ops.get_op("inv").prepare(50, "float64", seed=7)
    assert not np.array_equal(a.args[0], c.args[0])


@pytest.mark.parametrize("lib", ops.LIBS)
@pytest.mark.parametrize("dtype", ops.DTYPES)
def test_every_op_computes_the_right_thing(lib, dtype):
    n = 40
    tol = 1e-3 if dtype in ("float32", "complex64") else 1e-9
    for name, op in ops.OPS.items():
        if dtype not in op.dtypes:
            continue
        p = op.prepare(n, dtype, lib)
        out = p.fn(*p.args)
        a = p.args[0] if name != "dot" or lib == "numpy" else p.args[1]
        if name == "dot":
            x, y = (p.args[0], p.args[1]) if lib == "numpy" else (p.args[1], p.args[2])
            assert np.allclose(out, x @ y, rtol=tol, atol=tol)
        elif name == "inv":
            assert np.allclose(out @ a, np.eye(n), atol=tol * 10)
        elif name == "det":
            assert np.isclose(out, np.prod(np.linalg.eigvals(a.astype(complex))), rtol=tol * 10)
        elif name == "solve":
            assert np.allclose(a @ out, p.args[1], atol=tol * 10)
        elif name == "cholesky":
            assert np.allclose(out @ out.conj().T, a, atol=tol * 10)
        elif name == "qr":
            q, r = out
            assert np.allclose(q @ r, a, atol=tol * 10)
        elif name in ("svd", "svdvals", "eigh"):
            assert np.all(np.isfinite(out[0] if isinstance(out, tuple) else out))
        elif name == "add":
            assert np.array_equal(p.args[2], p.args[0] + p.args[1])
        elif name == "sin":
            assert np.allclose(p.args[1], np.sin(p.args[0]))
        elif name == "norm_isf":
            assert np.all(np.isfinite(out)) and out.shape == (n, n)
        assert p.impl.split(".")[0] in ("numpy", "scipy")


def test_registry_parsing_and_errors():
    assert ops.parse_ops(["dot,inv", "svd"]) == ["dot", "inv", "svd"]
    assert ops.parse_ops(["all"]) == list(ops.OPS)
    blas = {name for name, op in ops.OPS.items() if op.blas}
    assert blas >= {"dot", "inv", "svd", "det", "solve", "cholesky", "eigh", "qr"}
    assert set(ops.OPS) - blas == {"add", "sin", "norm_isf"}
    with pytest.raises(BlastuneError, match="unknown op 'gemv'"):
        ops.parse_ops(["gemv"])
    with pytest.raises(BlastuneError, match="unknown dtype 'int8'"):
        ops.check_dtype(None, "int8")
    with pytest.raises(BlastuneError, match="norm_isf does not take dtype complex64"):
        ops.get_op("norm_isf").prepare(10, "complex64")
    with pytest.raises(BlastuneError, match="numpy or scipy"):
        ops.check_lib("mkl")
