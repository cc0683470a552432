"""`aps-mirror validate`: call each sample endpoint (APS, and Vault when the connection has a
`vault_url`) and say which capability works."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from aps_mirror.aps.capabilities import all_essential_ok, validate
from aps_mirror.cli.common import ExitCode, aps_client, vault_client
from aps_mirror.connection import DEFAULT_CONN_ID
from aps_mirror.vault.capabilities import validate_vault


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    client = aps_client(args.conn_id)
    checks = validate(client)
    vault = vault_client(args.conn_id, client)
    if vault is not None:  # the connection reaches a Vault too (extra.vault_url)
        try:
            checks += validate_vault(vault, vault.settings)
        finally:
            vault.close()
    if args.json:
        json.dump([asdict(c) for c in checks], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for check in checks:
            print(f"[{'ok' if check.ok else 'FAIL':>4}] {check.capability}: {check.detail}")
    return ExitCode.OK if all_essential_ok(checks) else ExitCode.FAILED
