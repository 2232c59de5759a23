"""The operations ``blastune sweep`` times: what each calls, how many FLOPs it does, what memory it
needs, and how its inputs are built.

FLOP counts follow LAPACK Working Note 41 (Blackford & Dongarra, "Installation Guide for LAPACK",
LAWN 41, netlib.org/lapack/lawns/lawn41.ps) in the form LAPACK++ uses them (include/lapack/flops.hh
and include/blas/flops.hh of icl-utk-edu/lapackpp; MAGMA's testing/flops.h has the same formulas):
each routine counts its multiplications and additions separately, and

    FLOPs = muls + adds                  for real types,
    FLOPs = 6 * muls + 2 * adds          for complex types

because one complex multiply is 4 real multiplies + 2 real adds (6 FLOPs) and one complex add is
2 real adds. A complex gemm is therefore 4x the FLOPs of a real gemm of the same size.

Where the work depends on the data (divide-and-conquer eigen/singular solvers) the count is labelled
``nominal``: only the deterministic reductions and back-transformations are counted, so GFLOP/s of
such ops compare thread counts on one machine, not libraries with each other.

Inputs are built from a fixed seed so every run (and every thread count) times the same numbers, and
are well conditioned: general matrices are I + G/(4 sqrt n) (G standard normal; its spectral norm is
about 1/2, so the condition number is at most about 3), symmetric ones are that matrix's symmetric
part, and SPD ones are 3 I + a Wigner matrix scaled to spectrum [-2, 2] -- positive definite with
eigenvalues in about [1, 5], built in O(n^2) rather than with a gemm.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

from blastune.errors import BlastuneError

DTYPES = ("float32", "float64", "complex64", "complex128")
LIBS = ("numpy", "scipy")
DEFAULT_SEED = 20240501
_ITEMSIZE = {"float32": 4, "float64": 8, "complex64": 8, "complex128": 16}


def is_complex(dtype: str) -> bool:
    return dtype.startswith("complex")


def lawn41_flops(muls: float, adds: float, dtype: str) -> float:
    """Combine LAWN 41 multiply and add counts into FLOPs: complex mul = 6 FLOPs, complex add =
    2."""
    return 6 * muls + 2 * adds if is_complex(dtype) else muls + adds


# --- LAWN 41 counts (muls, adds) for square n x n problems, as in LAPACK++ include/lapack/flops.hh


def gemm_counts(m, n, k):
    return m * n * k, m * n * k


def getrf_counts(n):  # LU with partial pivoting, m = n
    return (
        0.5 * n**3 - n**3 / 6 + 0.5 * n * n - 0.5 * n * n + 2 / 3 * n,
        0.5 * n**3 - n**3 / 6 - 0.5 * n * n + n / 6,
    )


def getri_counts(n):  # inverse from the LU factors
    return 2 / 3 * n**3 + 0.5 * n * n + 5 / 6 * n, 2 / 3 * n**3 - 1.5 * n * n + 5 / 6 * n


def getrs_counts(n, nrhs):  # two triangular solves with nrhs right-hand sides
    return nrhs * n * n, nrhs * n * (n - 1)


def potrf_counts(n):  # Cholesky
    return n**3 / 6 + 0.5 * n * n + n / 3, n**3 / 6 - n / 6


def geqrf_counts(n):  # Householder QR, m = n (LAPACK++ uses the m <= n branch for square input)
    return (
        n * n * n - n**3 / 3 + 2 * n * n - 0.5 * n * n + 23 / 6 * n,
        n * n * n - n**3 / 3 + n * n - 0.5 * n * n + 5 / 6 * n,
    )


def orgqr_counts(m, n, k):  # form Q explicitly (ungqr for complex)
    return (
        2 * m * n * k - (m + n) * k * k + 2 / 3 * k**3 + 2 * n * k - k * k - 5 / 3 * k,
        2 * m * n * k - (m + n) * k * k + 2 / 3 * k**3 + n * k - m * k + k / 3,
    )


def ormqr_left_counts(m, n, k):  # apply Q from the left (unmqr)
    return 2 * n * m * k - n * k * k + 2 * n * k, 2 * n * m * k - n * k * k + n * k


def sytrd_counts(n):  # reduction to tridiagonal form (hetrd)
    return 2 / 3 * n**3 + 2.5 * n * n - n / 6, 2 / 3 * n**3 + n * n - 8 / 3 * n


def gebrd_counts(n):  # reduction to bidiagonal form, m = n
    return (
        2 * n**3 - 2 / 3 * n**3 + 2 * n * n + 20 / 3 * n,
        2 * n**3 - 2 / 3 * n**3 + n * n - n * n + 5 / 3 * n,
    )


def _sum(*counts):
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


@dataclass(frozen=True)
class Prepared:
    """One op ready to time: ``fn(*args)`` runs it once on inputs built beforehand."""

    fn: Callable
    args: tuple
    impl: str  # the call a user would write, e.g. "numpy.linalg.inv"


@dataclass(frozen=True)
class Op:
    name: str
    summary: str
    blas: bool  # does a threaded BLAS/LAPACK do the work? (add/sin/norm_isf: no)
    flop_source: str  # where the count comes from (shown in docs and JSON)
    nominal: bool  # True when the count is a data-independent stand-in
    arrays: float  # n x n arrays alive at once (inputs, outputs, LAPACK copies/workspace)
    counts: Callable | None  # (n, lib) -> (muls, adds); None = not a FLOP-counted op
    build: Callable  # (n, dtype, lib, rng) -> Prepared
    dtypes: tuple[str, ...] = DTYPES
    notes: tuple[str, ...] = field(default_factory=tuple)

    def flops(self, n: int, dtype: str, lib: str = "numpy") -> float | None:
        if self.counts is None:
            return None
        muls, adds = self.counts(n, lib)
        return lawn41_flops(muls, adds, dtype)

    def memory_bytes(self, n: int, dtype: str) -> int:
        """Peak bytes for a point: the op's arrays plus the float64 scratch used to build inputs."""
        item = _ITEMSIZE[dtype]
        # building inputs: the real draws, and for complex the imaginary draws, 1j * them and the
        # sum
        build_scratch = (48 if is_complex(dtype) else 16) * n * n
        return int(math.ceil(self.arrays * n * n * item + build_scratch))

    def prepare(self, n: int, dtype: str, lib: str = "numpy", seed: int = DEFAULT_SEED) -> Prepared:
        check_dtype(self, dtype)
        import numpy as np

        return self.build(n, dtype, lib, np.random.default_rng(seed))


# --- input builders -------------------------------------------------------------------------------


def _gaussian(rng, n, dtype, shape=None):
    import numpy as np

    shape = (n, n) if shape is None else shape
    real = "float32" if dtype in ("float32", "complex64") else "float64"
    g = rng.standard_normal(shape, dtype=real)
    if is_complex(dtype):
        g = g + 1j * rng.standard_normal(shape, dtype=real)
    return np.asarray(g, dtype=dtype)


def well_conditioned(rng, n, dtype, order="C"):
    """I + G / (4 sqrt n): singular values within about [0.5, 1.5]."""
    import numpy as np

    a = _gaussian(rng, n, dtype)
    a *= 1 / (4 * math.sqrt(n))
    a[np.diag_indices(n)] += 1
    return np.asarray(a, order=order)


def hermitian(rng, n, dtype, order="C"):
    import numpy as np

    a = well_conditioned(rng, n, dtype)
    return np.asarray((a + a.conj().T) / 2, order=order)


def spd(rng, n, dtype, order="C"):
    """3 I + W, W Hermitian with spectrum in about [-2, 2]: Hermitian positive definite, cond <=
    ~5."""
    import numpy as np

    g = _gaussian(rng, n, dtype)
    w = (g + g.conj().T) / math.sqrt((4 if is_complex(dtype) else 2) * n)
    w[np.diag_indices(n)] += 3
    return np.asarray(w, dtype=dtype, order=order)


def _order(lib):
    # scipy's f2py wrappers copy C-ordered input to Fortran order on every call; hand them Fortran
    # order so the timing holds the LAPACK call, not a copy numpy users would not pay.
    return "F" if lib == "scipy" else "C"


def _build_dot(n, dtype, lib, rng):
    a = well_conditioned(rng, n, dtype, _order(lib))
    b = well_conditioned(rng, n, dtype, _order(lib))
    if lib == "scipy":
        from scipy.linalg import blas

        (gemm,) = blas.get_blas_funcs(("gemm",), (a, b))
        return Prepared(gemm, (1.0, a, b), f"scipy.linalg.blas.{gemm.typecode}gemm")
    import numpy as np

    return Prepared(np.dot, (a, b), "numpy.dot")


def _linalg(
    numpy_name, scipy_name=None, builder=well_conditioned, rhs=False, numpy_kw=None, **scipy_kw
):
    """numpy.linalg.NAME / scipy.linalg.NAME on one built matrix (and, with ``rhs``, a right-hand
    side vector drawn after it)."""

    def build(n, dtype, lib, rng):
        args = (builder(rng, n, dtype, _order(lib)),)
        if rhs:
            args += (_gaussian(rng, n, dtype, shape=(n,)),)
        if lib == "scipy":
            import scipy.linalg

            name = scipy_name or numpy_name
            fn = functools.partial(getattr(scipy.linalg, name), check_finite=False, **scipy_kw)
            return Prepared(fn, args, f"scipy.linalg.{name}")
        import numpy as np

        fn = getattr(np.linalg, numpy_name)
        if not numpy_kw:
            return Prepared(fn, args, f"numpy.linalg.{numpy_name}")
        kw = ", ".join(f"{k}={v}" for k, v in numpy_kw.items())
        return Prepared(functools.partial(fn, **numpy_kw), args, f"numpy.linalg.{numpy_name}({kw})")

    return build


def _ufunc(name, inputs):
    """numpy.NAME(B[, C], out=A) into a preallocated A: the arithmetic, not the allocator, is what
    threads could speed up."""

    def build(n, dtype, lib, rng):
        import numpy as np

        args = tuple(_gaussian(rng, n, dtype) for _ in range(inputs))
        impl = f"numpy.{name}({', '.join('BC'[:inputs])}, out=A)"
        if lib == "scipy":
            impl += f" (numpy: scipy has no {name})"
        return Prepared(getattr(np, name), (*args, np.empty_like(args[0])), impl)

    return build


def _build_norm_isf(n, dtype, lib, rng):
    import scipy.stats

    q = rng.uniform(0.001, 0.999, size=(n, n)).astype(dtype)
    return Prepared(scipy.stats.norm.isf, (q,), "scipy.stats.norm.isf")


_LAWN = "LAWN 41 via LAPACK++ include/lapack/flops.hh"

OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op(
            "dot",
            "matrix product C = A B (gemm)",
            True,
            "gemm: 2 n^3 (" + _LAWN.replace("lapack/", "blas/") + ")",
            False,
            3,
            lambda n, lib: gemm_counts(n, n, n),
            _build_dot,
        ),
        Op(
            "inv",
            "matrix inverse",
            True,
            "numpy: gesv against the identity = getrf + getrs(nrhs=n) ~ 8n^3/3; "
            f"scipy: getrf + getri ~ 2n^3 ({_LAWN})",
            False,
            4,
            lambda n, lib: (
                _sum(getrf_counts(n), getri_counts(n))
                if lib == "scipy"
                else _sum(getrf_counts(n), getrs_counts(n, n))
            ),
            _linalg("inv"),
        ),
        Op(
            "det",
            "determinant (via LU)",
            True,
            f"getrf ~ 2n^3/3 ({_LAWN})",
            False,
            2,
            lambda n, lib: getrf_counts(n),
            _linalg("det"),
        ),
        Op(
            "solve",
            "solve A x = b, one right-hand side",
            True,
            f"gesv = getrf + getrs(nrhs=1) ~ 2n^3/3 ({_LAWN})",
            False,
            2,
            lambda n, lib: _sum(getrf_counts(n), getrs_counts(n, 1)),
            _linalg("solve", rhs=True),
        ),
        Op(
            "cholesky",
            "Cholesky factor of an SPD (Hermitian PD) matrix",
            True,
            f"potrf ~ n^3/3 ({_LAWN})",
            False,
            2,
            lambda n, lib: potrf_counts(n),
            _linalg("cholesky", builder=spd, lower=True),
        ),
        Op(
            "qr",
            "QR factorisation with Q formed",
            True,
            f"geqrf + orgqr(n, n, n) ~ 4n^3/3 + 4n^3/3 ({_LAWN})",
            False,
            4,
            lambda n, lib: _sum(geqrf_counts(n), orgqr_counts(n, n, n)),
            _linalg("qr"),
        ),
        Op(
            "svd",
            "singular value decomposition with U and V^H (gesdd)",
            True,
            f"nominal: gebrd + two ormbr back-transformations ~ 8n^3/3 + 4n^3 ({_LAWN}); the "
            "bidiagonal divide and conquer is data-dependent and not counted",
            True,
            8,
            lambda n, lib: _sum(
                gebrd_counts(n), ormqr_left_counts(n, n, n), ormqr_left_counts(n, n, n)
            ),
            _linalg("svd"),
        ),
        Op(
            "svdvals",
            "singular values only",
            True,
            f"nominal: gebrd ~ 8n^3/3 ({_LAWN}); the O(n^2) bidiagonal iteration is not counted",
            True,
            3,
            lambda n, lib: gebrd_counts(n),
            # numpy.linalg has no svdvals; numpy's spelling is svd(a, compute_uv=False)
            _linalg("svd", "svdvals", numpy_kw={"compute_uv": False}),
        ),
        Op(
            "eigh",
            "eigenvalues and eigenvectors of a symmetric (Hermitian) matrix",
            True,
            f"nominal: sytrd + ormtr back-transformation ~ 4n^3/3 + 2n^3 ({_LAWN}); the tridiagonal"
            " solver (numpy: divide and conquer, scipy: MRRR) is data-dependent and not counted",
            True,
            5,
            lambda n, lib: _sum(sytrd_counts(n), ormqr_left_counts(n, n, n)),
            _linalg("eigh", builder=hermitian),
        ),
        Op(
            "add",
            "A = B + C, element-wise (not BLAS: numpy does not thread it)",
            False,
            "n^2 adds",
            False,
            3,
            lambda n, lib: (0, n * n),
            _ufunc("add", 2),
        ),
        Op(
            "sin",
            "A = sin(B), element-wise (not BLAS)",
            False,
            "not counted: a sine is not a fixed number of FLOPs",
            False,
            2,
            None,
            _ufunc("sin", 1),
        ),
        Op(
            "norm_isf",
            "scipy.stats.norm.isf(B), element-wise (not BLAS)",
            False,
            "not counted: the inverse normal CDF is not a fixed number of FLOPs",
            False,
            4,
            None,
            _build_norm_isf,
            dtypes=("float32", "float64"),
        ),
    )
}


def get_op(name: str) -> Op:
    try:
        return OPS[name]
    except KeyError:
        raise BlastuneError(f"unknown op {name!r}: choose from {', '.join(OPS)} or all") from None


def check_dtype(op: Op | None, dtype: str) -> str:
    if dtype not in DTYPES:
        raise BlastuneError(f"unknown dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    if op is not None and dtype not in op.dtypes:
        raise BlastuneError(
            f"op {op.name} does not take dtype {dtype}: it takes {', '.join(op.dtypes)}"
        )
    return dtype


def check_lib(lib: str) -> str:
    if lib not in LIBS:
        raise BlastuneError(f"unknown library {lib!r}: choose numpy or scipy")
    return lib


def words(values) -> list[str]:
    """['dot,inv', 'svd'] -> ['dot', 'inv', 'svd']: commas split, spaces ignored, empty words
    dropped (nothing left is an error, not a request for the default)."""
    return [part for value in values for part in str(value).replace(" ", "").split(",") if part]


def parse_ops(values) -> list[str]:
    """['dot,inv', 'svd'] or ['all'] -> op names in registry order for 'all', as given otherwise."""
    names = []
    for part in words(values):
        if part == "all":
            names.extend(OPS)
            continue
        get_op(part)
        names.append(part)
    if not names:
        raise BlastuneError(f"no op given: choose from {', '.join(OPS)} or all")
    return list(dict.fromkeys(names))


def check_memory(op_name: str, size: int, dtype: str) -> int:
    """Refuse, before allocating, a point whose arrays would not fit in the memory we may still
    use."""
    from blastune.core.counts import format_bytes
    from blastune.facts.cpu import available_memory

    need = get_op(op_name).memory_bytes(size, dtype)
    avail, source = available_memory()
    if avail is not None and need > avail:
        raise BlastuneError(
            f"{op_name} at size {size} ({dtype}) needs about {format_bytes(need)} of memory but "
            f"only {format_bytes(avail)} is available ({source}): choose a smaller --size"
        )
    return need
