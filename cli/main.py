"""`autopilot`: the command line. A subcommand is one entry in `COMMANDS`: (add_arguments, run, summary).

    autopilot validate FILE [--json] [--workers N]   the scan an upload gets; exit 0 valid, 1 invalid, 2 usage
                                                     or I/O error
    autopilot check-azure [--json]                   Azure pre-flight before the first upload (reads only)
    autopilot key [PROJECT]                          the front door's key (the only thing that prints it)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cli import check_azure, key
from cli.context import CliError
from cli.ops import add_commands
from shared.azurite import DEVELOPMENT_STORAGE
from shared.local_settings import load_local_settings
from shared.settings import Settings, SettingsError

if TYPE_CHECKING:
    from shared.dataset import Report

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
_PROGRESS_MIN_BYTES = 64 * 1024 * 1024

Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="chat JSONL (or .jsonl.gz, .parquet) to check")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="scan a big file with at most N processes (default: INGEST_WORKERS, 0 = one "
                             "per core)")


def _validate(args: argparse.Namespace) -> int:
    from shared.dataset import Limits, Parallelism, scan_path, upload_format

    path: Path = args.file
    if not path.is_file():
        print(f"autopilot validate: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:  # the limits an upload gets (MIN_TRAINING_ROWS, MAX_TOKENS_PER_RUN, ...)
        settings = _upload_settings()
    except SettingsError as exc:
        print(f"autopilot validate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    size = path.stat().st_size
    show_progress = not args.json and sys.stdout.isatty() and size >= _PROGRESS_MIN_BYTES \
        and upload_format(path.name) != "parquet"
    workers = settings.ingest_workers if args.workers is None else args.workers
    scan = functools.partial(scan_path, limits=Limits.from_settings(settings),
                             parallel=Parallelism(workers=workers))
    try:
        report = _scan_with_progress(path, size, scan) if show_progress else scan(path)
    except OSError as exc:
        print(f"autopilot validate: {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report.to_json() if args.json else report.to_text(path.name))
    return EXIT_OK if report.valid else EXIT_INVALID


def _upload_settings() -> Settings:
    """The settings the ingest trigger would run with here. Validating touches no storage, so a missing
    storage setting (an Azure deployment's identity-based one, say) is not an error here."""
    load_local_settings()
    return Settings.from_env({"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE, **os.environ})


def _scan_with_progress(path: Path, size: int, scan_path: Callable[..., Report]) -> Report:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    # No refresh thread: a process without threads starts its scan workers by forking, at no start-up cost.
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), transient=True, auto_refresh=False) as bar:
        task = bar.add_task(f"checking {path.name}", total=size)
        return scan_path(path, progress=lambda done: bar.update(task, completed=done, refresh=True))


COMMANDS: dict[str, Command] = {
    "validate": (_validate_arguments, _validate, "check a chat dataset the way an upload is checked"),
    "check-azure": (check_azure.add_arguments, check_azure.run,
                    "check the Azure settings before the first upload: base model, compute, endpoint name"),
    "key": (key.add_arguments, key.run, "print the front door's key, for a client's api_key"),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser with one subparser per entry in COMMANDS."""
    parser = argparse.ArgumentParser(prog="autopilot", description="Fine-Tune Autopilot")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add_arguments, run, summary) in COMMANDS.items():
        command = sub.add_parser(name, help=summary, description=summary)
        add_arguments(command)
        command.set_defaults(run=run)
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `autopilot` console script; returns the exit status.

    What goes wrong is one line on stderr saying what to do, exit 2 — never a traceback (AUTOPILOT_DEBUG=1
    shows it for an error that is not the user's to fix).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    try:
        status: int = args.run(args)
    except BrokenPipeError:
        # The reader went away (`autopilot status | head`): nothing more can be shown; stop quietly, and
        # keep the interpreter's own flush at exit from failing on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI's one place that turns errors into a line
        if os.environ.get("AUTOPILOT_DEBUG"):
            raise
        print(f"autopilot {args.command}: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return status


def one_line(exc: BaseException) -> str:
    """What went wrong, and what to do about it, in one line."""
    from shared.runs import StoreError

    text = " ".join(str(exc).split())[:400]
    if isinstance(exc, CliError | SettingsError):
        return text
    if isinstance(exc, StoreError) or _is_storage_error(exc):
        return (f"the storage could not be reached ({text}); start it with `autopilot up`, set "
                "AUTOPILOT_STORAGE, or pass --url (AUTOPILOT_URL) to ask a running app")
    return f"{type(exc).__name__}: {text} (AUTOPILOT_DEBUG=1 shows where)"


def _is_storage_error(exc: BaseException) -> bool:
    try:
        from azure.core.exceptions import AzureError
    except ImportError:  # pragma: no cover - azure-core is a requirement
        return False
    return isinstance(exc, AzureError)


if __name__ == "__main__":
    sys.exit(main())
