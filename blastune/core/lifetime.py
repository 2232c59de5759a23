"""A child that dies with its parent: the kernel's ``PR_SET_PDEATHSIG`` (Linux), looked up once for
blastune's two kinds of children -- the commands ``run`` starts (set between fork and exec, where
nothing may be loaded: look ``prctl`` up in the parent) and blastune's own worker processes."""

from __future__ import annotations

import os
import sys

PR_SET_PDEATHSIG = 1


def libc_prctl():
    """libc's prctl, or None where there is none (blastune's own exit paths still end children)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with(prctl, parent: int, sig: int) -> bool:
    """Ask the kernel to send this process ``sig`` when ``parent`` dies (SIGKILL included); False
    where it cannot. A parent that died before the request took effect is followed at once."""
    if prctl is None:
        return False
    asked = prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if os.getppid() != parent:  # even where the request failed: an orphan must not run on
        os._exit(1)
    return asked
