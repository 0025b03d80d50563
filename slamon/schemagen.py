"""Write the event JSON Schemas of sla.events into schemas/; ``--check`` only lists stale files."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sla.events import json_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def rendered_schemas() -> dict[str, str]:
    """The text of every schema file by name: pretty, sorted keys, newline-terminated."""
    return {
        name: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }


def stale_files(directory: Path) -> list[str]:
    """Names of schema files in ``directory`` that are missing, outdated or no longer generated."""
    expected = rendered_schemas()
    present = {path.name: path for path in directory.glob("*.json")}
    stale = {
        name
        for name, text in expected.items()
        if name not in present or present[name].read_text(encoding="utf-8") != text
    }
    return sorted(stale | (present.keys() - expected.keys()))


def write_schemas(directory: Path) -> list[str]:
    """Bring ``directory`` in line with the generated schemas; return the names changed."""
    expected = rendered_schemas()
    changed = stale_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        if name in expected:
            (directory / name).write_bytes(expected[name].encode("utf-8"))
        else:
            (directory / name).unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the schemas (exit 0), or with ``--check`` exit 1 when any is stale."""
    parser = argparse.ArgumentParser(prog="python -m slamon.schemagen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only list stale files")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema directory")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.dir)
        for name in stale:
            print(f"stale: {args.dir / name}", file=sys.stderr)
        if stale:
            print("run: python -m slamon.schemagen", file=sys.stderr)
        return 1 if stale else 0
    for name in write_schemas(args.dir):
        print(f"updated: {args.dir / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
