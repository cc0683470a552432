"""Entry point of the `aps-mirror` command."""

from __future__ import annotations

import argparse
import sys

from aps_mirror import __version__
from aps_mirror.cli import authorize, catalog, report, sync, tree, validate
from aps_mirror.cli.common import ExitCode, setup_logging
from aps_mirror.errors import ApsMirrorError, ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aps-mirror",
                                     description="Mirror Autodesk cloud documents into S3.")
    parser.add_argument("--version", action="version", version=f"aps-mirror {__version__}")
    _add_output_options(parser, defaults=True)
    # The same options after the command name too (`aps-mirror sync -v`), without overriding.
    common = argparse.ArgumentParser(add_help=False)
    _add_output_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[common])

    sync.configure_parser(command("sync", "mirror the selected projects once"))
    validate.configure_parser(command("validate", "check what the connection can do"))
    tree.configure_parser(command("tree", "show the mirror in S3 as a tree"))
    authorize.configure_parser(command("authorize", "connect an Autodesk account to a connection"))
    report.configure_parser(command("report", "summarize the mirror's health from its catalog"))
    catalog.configure_parser(command("catalog", "publish or download the mirror's catalog (Parquet)"))
    from aps_mirror.simulator import cli as simulator_cli

    simulator_cli.configure_parser(command("simulator", "run the APS simulator"))
    return parser


def _add_output_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    parser.add_argument("-v", "--verbose", action="count",
                        default=0 if defaults else argparse.SUPPRESS, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true",
                        default=False if defaults else argparse.SUPPRESS,
                        help="warnings and errors only")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except ApsMirrorError as exc:
        # Printed, not logged: importing Airflow may have re-routed logging.
        print(f"aps-mirror: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE if isinstance(exc, ConfigError) else ExitCode.FAILED
    except KeyboardInterrupt:
        print("aps-mirror: interrupted; the mirror and its manifests are consistent, "
              "run again to finish", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
