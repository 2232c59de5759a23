"""The one interface every BLAS/LAPACK/OpenMP family implements, and the ctypes plumbing they share.

A family is identified by a table of marker symbols and path patterns (as threadpoolctl does),
never by an if-chain: adding a vendor means adding one small module.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import re
from dataclasses import asdict, dataclass, field

# How a library's thread count can be changed.
RUNTIME = "runtime"  # a call inside the running process changes it
ENV = "env"          # only an environment variable read before the library starts
FIXED = "fixed"      # decided when the library was built

_RTLD_NOLOAD = getattr(os, "RTLD_NOLOAD", 4)


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


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
    api: str                          # blas, lapack, blas+lapack, openmp
    filepath: str
    version: str | None = None
    threading_layer: str | None = None  # pthreads, openmp, tbb, sequential, gnu, intel, none
    architecture: str | None = None     # kernel the library chose (OpenBLAS corename, MKL CPU path)
    num_threads: int | None = None
    threads_source: str = "queried"     # queried | env | build
    control: str = FIXED                # runtime | env | fixed
    control_vars: list[str] = field(default_factory=list)
    per_thread: bool = False
    notes: list[str] = field(default_factory=list)
    threadpoolctl_sees: bool | None = None

    def to_dict(self):
        return asdict(self)

    @property
    def controllable(self) -> bool:
        return self.control == RUNTIME


def env_threads(names, environ=None) -> tuple[int | None, str | None]:
    """The first positive integer among ``names`` in the environment, with the name it came from."""
    from blastune.core.counts import first_positive_int

    return first_positive_int(os.environ if environ is None else environ, names)


class Family:
    """One BLAS/LAPACK/OpenMP family. Subclasses fill the class tables and ``describe``."""
    name = "unknown"
    api = "blas"
    marker_symbols: tuple[str, ...] = ()   # any one of these, defined in the file, identifies it
    path_pattern: str | None = None        # regex on the resolved path, for libraries that hide symbols
    ignore_pattern: str | None = None      # files of the family that are only layers of another file
    thread_api: tuple[str, str] | None = None  # (getter, setter) symbols of a run-time thread API
    thread_ctype = ctypes.c_int            # the C type of the count those take and return
    per_thread = False                     # the setter applies to the calling thread only (OpenMP)

    @classmethod
    def owns(cls, path: str) -> bool:
        """Does the file at ``path`` (or one of its dependencies) implement this family?"""
        lib = handle(path)
        if lib is not None and any(address(lib, s) is not None for s in cls.marker_symbols):
            return True
        return bool(cls.path_pattern and re.search(cls.path_pattern, path))

    @classmethod
    def implementation_file(cls, path: str) -> str:
        """The file that really defines the family's markers (a libblas.so.3 shim may just depend on it)."""
        lib = handle(path)
        for s in cls.marker_symbols:
            a = address(lib, s)
            if a is not None:
                return file_of_address(a) or path
        return path

    @classmethod
    def describe(cls, path: str) -> LibraryInfo:
        raise NotImplementedError

    @classmethod
    def control(cls, path: str) -> Control | None:
        """Raw run-time control, or None when the library cannot change threads at run time."""
        if cls.thread_api is None:
            return None
        lib = handle(path)
        get = function(lib, cls.thread_api[0], cls.thread_ctype)
        set_ = function(lib, cls.thread_api[1], None, [cls.thread_ctype])
        return Control(get, set_, per_thread=cls.per_thread) if get and set_ else None

    @classmethod
    def read_runtime_threads(cls, info: LibraryInfo, path: str) -> bool:
        """Fill the count from the run-time API; False when the library has none."""
        ctl = cls.control(path)
        if ctl is None:
            return False
        info.num_threads, info.control, info.per_thread = ctl.get(), RUNTIME, ctl.per_thread
        return True
