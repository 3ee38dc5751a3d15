"""The command line every bench suite shares: ``--quick`` (default from BENCH_QUICK) and
``--out`` (a JSON file, its directory created), running the suite's ``run(quick)``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Callable


def main(run: Callable[[bool], dict[str, Any]], default_out: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--out", default=default_out)
    args = parser.parse_args(argv)
    result = run(args.quick)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0
