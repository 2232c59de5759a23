"""The ``blastune`` command line: parse options, call one library function, render what comes back.

Every error a user can cause ends as one line on stderr and exit status 2 -- including typer/click
usage errors, which click would otherwise print as a multi-line box.

A reader that goes away (``blastune sweep --json | head -c1``) ends any command quietly, the way
``cat`` ends: no traceback, no message, exit status 141 (128 + SIGPIPE, what the shell shows for
``cat`` killed by SIGPIPE), whatever command was writing and wherever the write failed.
"""

from __future__ import annotations

import errno
import os
import sys

import typer
from typer import echo as _echo
from typer.core import TyperGroup

from blastune.errors import BlastuneError


CLOSED_PIPE_STATUS = 141  # 128 + SIGPIPE: what `cat` killed by a closed pipe returns to the shell


class _ClosedPipe(Exception):
    """stdout's reader went away; raised past click, whose own handler would exit 1."""


def _is_closed_pipe(exc: BaseException | None) -> bool:
    # our file writers turn OSError into a one-line BlastuneError ... from None: the cause stays on
    # __context__ (a --csv /dev/stdout whose reader quit is a closed pipe too, not an error)
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _quiet_exit_on_closed_pipe() -> None:
    """Point stdout at /dev/null (the interpreter's last flush would fail again and print
    'Exception ignored ...') and leave with cat's status."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real fd (a test runner's buffer)
        pass  # nothing to flush
    sys.exit(CLOSED_PIPE_STATUS)


class _OneLineErrors(TyperGroup):
    def invoke(self, ctx):
        try:
            rv = super().invoke(ctx)
            sys.stdout.flush()  # a reader gone now must be seen here, not at interpreter exit
            return rv
        except Exception as exc:
            if _is_closed_pipe(exc):
                raise _ClosedPipe() from None
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from blastune.cli.render import set_wide

        set_wide(False)  # --wide belongs to one command: CliRunner runs many in one process
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name or "blastune",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except SystemExit as exc:
            # click met the closed pipe first (help, --version, a usage error): it wrapped stdout
            # and exits 1 -- make that the same quiet exit as everywhere else
            if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
                _quiet_exit_on_closed_pipe()
            raise
        except KeyboardInterrupt:
            _interrupted()
        except Exception as exc:
            # also --help and --version, written before any command is invoked
            if isinstance(exc, _ClosedPipe) or _is_closed_pipe(exc):
                _quiet_exit_on_closed_pipe()
            if isinstance(exc, BlastuneError):
                fail(str(exc))
            kind = type(exc).__name__
            if kind == "Abort":  # click turns Ctrl-C into Abort
                _interrupted()
            if kind == "NoArgsIsHelpError":
                ctx = getattr(exc, "ctx", None)
                _echo(ctx.get_help() if ctx else exc.format_message())
                sys.exit(0)
            if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # a usage error
                ctx = getattr(exc, "ctx", None)
                sub = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
                fail(f"{exc.format_message()} (see 'blastune{sub} --help')")
            if os.environ.get("BLASTUNE_DEBUG"):
                raise
            # a bug of ours: one line, the traceback on request
            _echo(
                f"blastune: internal error: {kind}: {exc} (set BLASTUNE_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(1)
        if rv == 130:  # typer turns Ctrl-C into a bare return code
            _interrupted()
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _usage_name(self) -> str:
    """NAME for a required argument, [NAME] for an optional one, NAME... for several: the usage line
    of click, man pages and every other tool (typer 0.2x prints a required argument as {NAME})."""
    name = self.metavar or self.display_name_raw
    if not self.required and not name.startswith("["):
        name = f"[{name}]"
    return name + ("..." if self.nargs != 1 and "..." not in name else "")


if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _usage_name

# One convention for the value an option takes in --help: an upper-case word that says what it is
# (N, FILE, SECONDS, LIST, STYLE), or the choices (numpy|scipy) -- never typer's type names (<int>,
# <str>, <path>, <list[Path]>, <float range>). An option's own metavar wins; these are the defaults.
_METAVARS_BY_NAME = {
    "format": "STYLE",
    "budget": "SECONDS",
    "interval": "SECONDS",
    "op": "OP",
    "shell": "SHELL",
    "dtype": "DTYPE",
    "lib": "numpy|scipy",
    "workload": "python|numpy",
    "func": "MODULE:FUNCTION",
    "layouts": "LIST",
    "workers": "N[,N...]",
    "executor": "LIST",
    "from": "FILE",
    "jobs": "N",
    "size": "N",
    "out": "FILE",
    "dpi": "DPI",
}
_METAVARS_BY_TYPE = {
    "integer": "N",
    "float": "X",
    "path": "FILE",
    "text": "TEXT",
    "boolean": "BOOL",
}


def _option_metavar(self, ctx) -> str | None:
    if self.metavar is not None:
        return self.metavar
    long_names = [o[2:] for o in self.opts if o.startswith("--")]
    value = next((_METAVARS_BY_NAME[n] for n in long_names if n in _METAVARS_BY_NAME), None)
    if value is None:
        kind = getattr(self.type, "name", "") or ""
        for base in ("integer", "float"):  # 'integer range', 'float range'
            kind = base if kind.startswith(base) else kind
        value = _METAVARS_BY_TYPE.get(kind, "VALUE")
    return value + ("..." if self.nargs != 1 else "")


if hasattr(typer.core.TyperOption, "display_type_rich"):
    typer.core.TyperOption.display_type_rich = _option_metavar
if hasattr(typer.core.TyperArgument, "display_type_rich"):
    # an argument's name is its placeholder already (FILE.json..., SECONDS): no '<list[Path]>'
    # beside it
    typer.core.TyperArgument.display_type_rich = lambda self, ctx: None


def _interrupted():
    _echo("blastune: interrupted", err=True)
    sys.exit(130)


def fail(message: str) -> None:
    _echo(f"blastune: error: {message}", err=True)
    sys.exit(2)


app = typer.Typer(
    cls=_OneLineErrors,
    help="Which BLAS/LAPACK numpy and scipy really run on, how fast at each thread count, "
    "and how to keep many jobs from oversubscribing the cores.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", "-V", help="Print the version and exit.", is_eager=True
    ),
):
    if version:
        from blastune import __version__

        typer.echo(f"blastune {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main() -> None:
    from blastune.measure import signals

    signals.SECOND_SIGNAL_ENDS_PROCESS = True  # the command owns its process (a host does not)
    app()


# Each command lives in its own module and registers itself on ``app``.
from blastune.cli import (
    info,
    sweep,
    compare,
    jobs,
    recommend,
    doctor,
    ps,
    env,
    run,
    slurm,
    layout,
    plot,
    report,
    profile,
)  # noqa: E402,F401
