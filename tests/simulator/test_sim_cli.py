"""``serve``: first stdout line is the JSON handshake; SIGINT/SIGTERM exit cleanly with 0."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from aps_mirror.simulator import cli

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_module_serve_prints_json_then_exits_cleanly(sig: signal.Signals) -> None:
    proc = _spawn("-m", "aps_mirror.simulator", "serve", "--port", "0", "--seed", "empty", "--rate-scale", "0")
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert set(first) == {"base_url", "client_id", "client_secret"}
        assert first["base_url"].startswith("http://127.0.0.1:")
        token = requests.post(first["base_url"] + "/authentication/v2/token",
                              data={"grant_type": "client_credentials", "scope": "data:read"},
                              auth=(first["client_id"], first["client_secret"]), timeout=5)
        assert token.status_code == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        assert "/authentication/v2/token" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_configure_parser_as_the_lead_wires_it() -> None:
    code = (
        "import argparse, aps_mirror.simulator.cli as c\n"
        "p = argparse.ArgumentParser(prog='aps-mirror'); sub = p.add_subparsers(dest='cmd')\n"
        "c.configure_parser(sub.add_parser('simulator'))\n"
        "a = p.parse_args(['simulator', 'serve', '--port', '0', '--seed', 'empty', '--access-token-ttl', '30'])\n"
        "raise SystemExit(a.func(a))\n"
    )
    proc = _spawn("-c", code)
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        body = requests.post(first["base_url"] + "/authentication/v2/token", data={"grant_type": "client_credentials"},
                             auth=(first["client_id"], first["client_secret"]), timeout=5).json()
        assert body["expires_in"] == 30
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_parser_defaults() -> None:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(["serve"])
    assert (args.port, args.host, args.seed, args.rate_scale, args.access_token_ttl) == (
        8765, "127.0.0.1", "demo", 1.0, 3599)
    assert args.func is cli.serve_command


def test_unknown_seed_is_a_usage_error() -> None:
    proc = _spawn("-m", "aps_mirror.simulator", "serve", "--port", "0", "--seed", "nope")
    assert proc.wait(timeout=15) == 2


def test_serve_generate_and_switches() -> None:
    proc = _spawn("-m", "aps_mirror.simulator", "serve", "--port", "0", "--generate", "projects=3,folders=5,files=1",
                  "--rate-scale", "0", "--reuse-detection", "off", "--rate-limit-headers", "on", "--fault-seed", "9")
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        files = requests.get(first["base_url"] + "/_sim/files", timeout=5).json()["files"]
        assert len(files) == 15
        switches = requests.post(first["base_url"] + "/_sim/switches", json={}, timeout=5).json()
        assert switches["reuse_detection"] is False and switches["rate_limit_headers"] is True
        assert requests.get(first["base_url"] + "/_sim/faults", timeout=5).json()["seed"] == "9"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
