"""`make bench`: run every benchmarks/bench_*.py and record its figures.

Each module has `run() -> dict` returning JSON-able figures (and may print progress);
they are written to benchmarks/results/<name>.json with the machine and date, and a
table of all of them to benchmarks/results/README.md. `make bench ONLY=simulator` runs one.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main(argv: list[str]) -> int:
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    only = [n for n in argv if n] or [n for n in os.environ.get("ONLY", "").split(",") if n]
    if only:
        unknown = set(only) - set(names)
        if unknown:
            print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(names)}")
            return 2
        names = only
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        print(f"==> benchmark {name}", flush=True)
        started = time.monotonic()
        figures = importlib.import_module(f"benchmarks.bench_{name}").run()
        record = {
            "benchmark": name,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "wall_seconds": round(time.monotonic() - started, 1),
            "figures": figures,
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(figures, indent=2), flush=True)
    write_table()
    return 0


def write_table() -> None:
    lines = ["# Benchmark results", "", "Written by `make bench`; one section per benchmark.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        lines += [f"## {record['benchmark']}", "",
                  f"{record['date']}, {record['machine']['cpus']} CPUs, Python {record['machine']['python']}, "
                  f"{record['wall_seconds']} s", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in _flatten(record["figures"]).items()]
        lines.append("")
    (RESULTS / "README.md").write_text("\n".join(lines))


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main(sys.argv[1:]))
