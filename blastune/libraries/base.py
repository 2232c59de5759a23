"""The one interface every BLAS/LAPACK/OpenMP family implements, and the ctypes plumbing they share.

A family is identified by a table of marker symbols and path patterns (as threadpoolctl does),
never by an if-chain.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
from dataclasses import asdict, dataclass, field

from blastune.core.counts import first_positive_int
from blastune.documents.doctor import Finding

# How a library's thread count can be changed.
RUNTIME = "runtime"  # a call inside the running process changes it
ENV = "env"  # only an environment variable read before the library starts
FIXED = "fixed"  # decided when the library was built

_RTLD_NOLOAD = getattr(os, "RTLD_NOLOAD", 4)


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


_libc = ctypes.CDLL(None)
_dladdr = getattr(_libc, "dladdr", None)
if _dladdr is None:  # glibc < 2.34 keeps dladdr in libdl
    _dladdr = ctypes.CDLL("libdl.so.2").dladdr
_dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
_dladdr.restype = ctypes.c_int


def file_of_address(addr: int) -> str | None:
    """The shared object that holds ``addr``, symlinks resolved (as /proc/self/maps shows)."""
    info = _DlInfo()
    if addr and _dladdr(ctypes.c_void_p(addr), ctypes.byref(info)) and info.dli_fname:
        return os.path.realpath(info.dli_fname.decode())
    return None


_HANDLES: dict[str, ctypes.CDLL | None] = {}


def handle(path: str) -> ctypes.CDLL | None:
    """A handle on an already-loaded library; never loads anything new (RTLD_NOLOAD)."""
    if path not in _HANDLES:
        try:
            _HANDLES[path] = ctypes.CDLL(path, mode=_RTLD_NOLOAD | os.RTLD_LOCAL)
        except OSError:
            _HANDLES[path] = None
    return _HANDLES[path]


def address(lib: ctypes.CDLL | None, name: str) -> int | None:
    """dlsym(lib, name): searches the library and then its dependencies, like the loader does."""
    if lib is None:
        return None
    try:
        return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    except AttributeError:
        return None


def function(lib, name, restype=ctypes.c_int, argtypes=()):
    if address(lib, name) is None:
        return None
    f = getattr(lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


def runtime_control(lib, api: tuple[str, str], ctype=ctypes.c_int, per_thread=False):
    """A ``Control`` from a (getter, setter) pair of thread-count symbols; None unless both are."""
    get = function(lib, api[0], ctype)
    set_ = function(lib, api[1], None, [ctype])
    return Control(get, set_, per_thread=per_thread) if get and set_ else None


def version_in_path(path: str) -> str | None:
    """'.../libblas.so.3.10.0' -> '3.10.0': the version a library that exports none is named by."""
    m = re.search(r"\.so\.(\d+\.\d+\.\d+)", path)
    return m.group(1) if m else None


def affixed(bases, prefixes=("", "scipy_"), suffixes=("", "64_", "_64")):
    """Every spelling of a symbol: pip's scipy-openblas renames them with a prefix and suffix."""
    return tuple(p + b + s for b, p, s in itertools.product(bases, prefixes, suffixes))


@dataclass
class Control:
    """Raw get/set for a library whose threads can change at run time (what limit() calls)."""

    get: object
    set: object
    per_thread: bool = False  # OpenMP ICVs: a setting applies to the calling thread only


@dataclass
class LibraryInfo:
    """What blastune knows about one loaded library (plain data; ``to_dict`` for JSON)."""

    vendor: str
    api: str  # blas, lapack, blas+lapack, openmp
    filepath: str
    version: str | None = None
    threading_layer: str | None = None  # pthreads, openmp, tbb, sequential, gnu, intel, none
    architecture: str | None = None  # kernel the library chose (OpenBLAS corename, MKL CPU path)
    num_threads: int | None = None
    threads_source: str = "queried"  # queried | env | build
    control: str = FIXED  # runtime | env | fixed
    control_vars: list[str] = field(default_factory=list)
    per_thread: bool = False
    notes: list[str] = field(default_factory=list)
    threadpoolctl_sees: bool | None = None

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Seat:
    """Where a process runs: what a library may see of the machine when it sizes its pool."""

    cpus: int  # CPUs in the process's affinity mask (what sched_getaffinity counts)
    physical_cores: int | None = None  # the machine's physical cores (oneMKL caps at these)


# One thing the doctor says about a family: Advice(severity, finding, fix). The name the Family
# interface (vendor plug-ins) uses for the doctor's one Finding class; the registry stamps the id.
Advice = Finding


class Family:
    """One BLAS/LAPACK/OpenMP family: everything blastune knows about it, in class tables.

    Subclasses fill the tables and ``describe``; the rest of blastune derives from them -- detection
    (markers, paths), ``ps`` (``ps_pattern``, ``planned_threads``), the exported and checked
    environment variables (``thread_vars``, ``integer_vars``, ``key_vars``, ``other_vars``), the
    threadpoolctl bridge (``threadpoolctl_blind``) and the doctor (``measured_gflops``, ``slow``,
    ``doctor_check`` + ``advise``).
    """

    name = "unknown"
    api = "blas"
    marker_symbols: tuple[str, ...] = ()  # any one of these, defined in the file, identifies it
    path_pattern: str | None = None  # regex on the resolved path, for libraries that hide symbols
    ignore_pattern: str | None = None  # files of the family that are only layers of another file
    thread_api: tuple[str, str] | None = None  # (getter, setter) symbols of a run-time thread API
    thread_ctype = ctypes.c_int  # the C type of the count those take and return
    per_thread = False  # the setter applies to the calling thread only (OpenMP)

    # -- seen from another process (``blastune ps``): only its mapped file paths and its environ
    ps_pattern: str | None = None  # regex on a mapped file's real path; None: path_pattern
    wrapper = False  # forwards to a backend (FlexiBLAS): the backend's pool counts

    # -- environment variables, each listed by the one family that reads it
    thread_vars: tuple[str, ...] = ()  # set its pool size, in the order it reads them
    integer_vars: tuple[str, ...] = ()  # other variables that must hold a positive integer
    strict_vars: tuple[str, ...] = ()  # integer variables read strictly (' 2' is not 2)
    list_vars: tuple[str, ...] = ()  # integer variables that may hold a comma list ('4,2')
    key_vars: tuple[str, ...] = ()  # change its layer or kernels: info shows them even unset
    other_vars: tuple[str, ...] = ()  # also read; info shows them when set

    # -- how many threads it runs when a process starts (see ``planned_threads``)
    serial = False  # always one thread, whatever the environment says
    default_threads: int | None = None  # with no variable set; None: one per CPU it may use
    caps_at_cpus = False  # never starts more threads than CPUs in its affinity mask

    # -- what the doctor and the threadpoolctl bridge say about it
    threadpoolctl_blind = False  # threadpoolctl has no controller for it: blastune registers one
    display_name: str | None = None  # in prose ("reference BLAS"); None: ``name``
    measured_gflops: float | None = None  # dot 2000x2000, GFLOP/s per core, on the 2-core reference
    # machine (bench/doctor_slow_blas.py measures it)
    slow = False  # the doctor tells numpy/scipy users to switch away from it
    doctor_check: str | None = None  # id of the doctor check ``advise`` answers

    @classmethod
    def reads(cls) -> tuple[str, ...]:
        """Every variable the family reads, thread counts first."""
        return tuple(
            dict.fromkeys(cls.thread_vars + cls.integer_vars + cls.key_vars + cls.other_vars)
        )

    @classmethod
    def planned_threads(cls, environ, seat: Seat, paths=()) -> tuple[int, str]:
        """The threads one call will really run in a process started with ``environ`` on ``seat``,
        and why. ``environ`` None: not readable (another user's process); ``paths``: its mapped
        files."""
        if cls.serial:
            return 1, f"{cls.name}: serial, always 1 thread"
        n, var = first_positive_int(environ or {}, cls.thread_vars)
        if n is None:
            return cls._default(environ, seat)
        if cls.caps_at_cpus and n > seat.cpus:
            return seat.cpus, f"{cls.name}: {var}={n}, capped at the {seat.cpus} CPUs it may use"
        return n, f"{cls.name}: {var}={n}"

    @classmethod
    def _default(cls, environ, seat: Seat) -> tuple[int, str]:
        if cls.default_threads is not None:
            return cls.default_threads, f"{cls.name}: default {cls.default_threads} thread(s)"
        if environ is None:
            return (
                seat.cpus,
                f"{cls.name}: environment unreadable, assumed one thread per CPU ({seat.cpus})",
            )
        return seat.cpus, f"{cls.name}: default, one thread per CPU it may use ({seat.cpus})"

    @classmethod
    def advise(cls, libs: list, environ, want: int, label) -> list[Advice]:
        """The doctor's ``doctor_check`` for this family: ``libs`` are its loaded libraries
        (LibraryInfo), ``want`` the threads per job the machine allows, ``label(lib)`` names one."""
        return []

    @classmethod
    def owns(cls, path: str) -> bool:
        """Does the file at ``path`` (or one of its dependencies) implement this family?"""
        lib = handle(path)
        if lib is not None and any(address(lib, s) is not None for s in cls.marker_symbols):
            return True
        return bool(cls.path_pattern and re.search(cls.path_pattern, path))

    @classmethod
    def marker_files(cls, path: str):
        """For each marker symbol reachable from ``path``, the file that defines it: ``path`` itself
        or a library it depends on (a libblas.so.3 shim may just depend on the real one)."""
        lib = handle(path)
        for s in cls.marker_symbols:
            a = address(lib, s)
            if a is not None:
                yield file_of_address(a)

    @classmethod
    def implementation_file(cls, path: str) -> str:
        """The file that really defines the family's markers."""
        return next(cls.marker_files(path), None) or path

    @classmethod
    def describe(cls, path: str) -> LibraryInfo:
        raise NotImplementedError

    @classmethod
    def library_info(cls, path: str, **fields) -> LibraryInfo:
        """A ``LibraryInfo`` of this family for the file at ``path``; ``fields`` fill the rest."""
        return LibraryInfo(**{"vendor": cls.name, "api": cls.api, "filepath": path, **fields})

    @classmethod
    def control(cls, path: str) -> Control | None:
        """Raw run-time control, or None when the library cannot change threads at run time."""
        if cls.thread_api is None:
            return None
        return runtime_control(handle(path), cls.thread_api, cls.thread_ctype, cls.per_thread)

    @classmethod
    def read_runtime_threads(cls, info: LibraryInfo, path: str) -> bool:
        """Fill the count from the run-time API; False when the library has none."""
        ctl = cls.control(path)
        if ctl is None:
            return False
        info.num_threads, info.control, info.per_thread = ctl.get(), RUNTIME, ctl.per_thread
        return True
