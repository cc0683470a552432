"""``simulator serve``: run the APS simulator until SIGINT/SIGTERM (first stdout line: JSON)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from aps_mirror.extras import MissingExtra

from .oauth import ACCESS_TOKEN_TTL, DEFAULT_REDIRECT_URIS
from .sim import Simulator

EXIT_OK = 0
EXIT_USAGE = 2


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` sub-command; handlers are ``args.func(args) -> int``."""
    sub = parser.add_subparsers(dest="simulator_command", metavar="COMMAND")
    sub.required = True
    serve = sub.add_parser("serve", help="run the APS simulator over HTTP until interrupted")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (0 = pick a free one; default 8765)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--seed", default="demo", help="starting data: demo (default), acc-full or empty")
    serve.add_argument("--generate", default=None, metavar="SETTINGS",
                       help="a synthetic account instead of --seed, e.g. projects=1000,folders=100,files=2")
    serve.add_argument("--reuse-detection", choices=("on", "off"), default="on",
                       help="replaying a spent refresh token revokes its whole chain (default on)")
    serve.add_argument("--rate-limit-headers", choices=("on", "off"), default="off",
                       help="send X-RateLimit-Limit/Remaining/Reset (default off)")
    serve.add_argument("--fault-seed", default="0", help="seed of probabilistic faults (default 0)")
    serve.add_argument("--rate-scale", type=float, default=1.0,
                       help="multiplier of Autodesk's per-minute limits (0 disables rate limits)")
    serve.add_argument("--access-token-ttl", type=int, default=ACCESS_TOKEN_TTL,
                       help=f"access token lifetime in seconds (default {ACCESS_TOKEN_TTL})")
    serve.add_argument("--redirect-uri", action="append", default=None,
                       help="an allowed OAuth callback URL (repeatable; default: a few localhost callbacks)")
    serve.add_argument("--client-id", default=None,
                       help="OAuth client id to register (default: derived from the seed)")
    serve.add_argument("--client-secret", default=None,
                       help="its client secret (default: derived from the seed)")
    serve.set_defaults(func=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Print ``{"base_url","client_id","client_secret"}`` first, then serve and log requests to stderr."""
    try:
        seed = f"generate:{args.generate}" if args.generate else args.seed
        sim = Simulator(seed=seed, rate_scale=args.rate_scale, access_token_ttl=args.access_token_ttl,
                        redirect_uris=args.redirect_uri or DEFAULT_REDIRECT_URIS,
                        client_id=args.client_id, client_secret=args.client_secret,
                        reuse_detection=args.reuse_detection == "on",
                        rate_limit_headers=args.rate_limit_headers == "on", fault_seed=args.fault_seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from .server import SimulatorServer  # the `simulator` extra
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = SimulatorServer(sim, host=args.host, port=args.port, log_level="info")
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        print(json.dumps({"base_url": server.base_url, "client_id": sim.client_id,
                          "client_secret": sim.client_secret}), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return EXIT_OK
