"""The ``blastune`` command line: parse options, call one library function, render what comes back.

Every error a user can cause ends as one line on stderr and exit status 2 -- including typer/click
usage errors, which click would otherwise print as a multi-line box.
"""
from __future__ import annotations

import os
import sys

import typer
from typer import echo as _echo
from typer.core import TyperGroup

from blastune.errors import BlastuneError


class _OneLineErrors(TyperGroup):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name or "blastune", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except BlastuneError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            _interrupted()
        except BrokenPipeError:
            sys.exit(0)
        except Exception as exc:
            kind = type(exc).__name__
            if kind == "Abort":  # click turns Ctrl-C into Abort
                _interrupted()
            if kind == "NoArgsIsHelpError":
                ctx = getattr(exc, "ctx", None)
                _echo(ctx.get_help() if ctx else exc.format_message())
                sys.exit(0)
            if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click/typer usage errors
                ctx = getattr(exc, "ctx", None)
                sub = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
                fail(f"{exc.format_message()} (see 'blastune{sub} --help')")
            if os.environ.get("BLASTUNE_DEBUG"):
                raise
            # a bug of ours: one line, the traceback on request
            _echo(f"blastune: internal error: {kind}: {exc} (set BLASTUNE_DEBUG=1 for the traceback)",
                       err=True)
            sys.exit(1)
        if rv == 130:  # typer turns Ctrl-C into a bare return code
            _interrupted()
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


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
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
):
    """Which BLAS/LAPACK numpy and scipy really run on, how fast at each thread count, and how to keep
    many jobs from oversubscribing the cores."""
    if version:
        from blastune import __version__

        typer.echo(f"blastune {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main() -> None:
    app()


# Each command lives in its own module and registers itself on ``app``.
from blastune.cli import info, sweep, jobs, doctor, env, slurm  # noqa: E402,F401
