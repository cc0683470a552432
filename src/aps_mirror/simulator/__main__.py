"""``python -m aps_mirror.simulator serve --port 0``: the simulator CLI without the main aps-mirror CLI."""

from __future__ import annotations

import argparse
import sys

from .cli import configure_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aps_mirror.simulator",
                                     description="Autodesk Platform Services simulator")
    configure_parser(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
