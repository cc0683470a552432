"""`aps-mirror tree`: show what the mirror holds in S3, as a tree with sizes."""

from __future__ import annotations

import argparse
from typing import Any

from aps_mirror.cli.catalog import add_location_options, mirror_location
from aps_mirror.cli.common import ExitCode, open_bucket
from aps_mirror.mirror.manifest import META_DIR
from aps_mirror.mirror.progress import human_bytes


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_location_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bucket, prefix = mirror_location(args)
    print(render_tree(open_bucket(args.aws_conn_id, bucket), bucket, prefix))
    return ExitCode.OK


def render_tree(s3: Any, bucket: str, prefix: str) -> str:
    root = prefix.strip("/") + "/" if prefix.strip("/") else ""
    tree: dict[str, Any] = {}
    files = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(root):]
            if rel.startswith(META_DIR + "/"):
                continue
            node = tree
            *dirs, name = rel.split("/")
            for d in dirs:
                node = node.setdefault(d + "/", {})
            node[name] = obj["Size"]
            files += 1
            total += obj["Size"]
    lines = [f"s3://{bucket}/{root}"]
    _render(tree, "", lines)
    lines.append(f"{files} files, {human_bytes(total)}")
    return "\n".join(lines)


def _size(node: Any) -> int:
    return node if isinstance(node, int) else sum(_size(v) for v in node.values())


def _render(node: dict[str, Any], indent: str, lines: list[str]) -> None:
    names = sorted(node, key=lambda n: (not n.endswith("/"), n.casefold()))
    for i, name in enumerate(names):
        last = i == len(names) - 1
        child = node[name]
        lines.append(f"{indent}{'└── ' if last else '├── '}{name}  [{human_bytes(_size(child))}]")
        if isinstance(child, dict):
            _render(child, indent + ("    " if last else "│   "), lines)
