"""The ``lossd`` command: ``lossd serve``, ``lossd losses`` and ``lossd warm``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Sequence

from lossd import settings as settings_mod


def _table() -> str:
    from lossd.schema import all_schemas

    lines = []
    for schema in all_schemas():
        aliases = f" (aliases: {', '.join(schema['aliases'])})" if schema["aliases"] else ""
        lines.append(f"{schema['id']}{aliases}: {schema['description']}")
        for i in schema["inputs"]:
            flags = ("differentiable" if i["differentiable"] else "constant") + \
                    ("" if i["required"] else ", optional")
            lines.append(f"    input  {i['name']:<22} {i['shape']}  [{'/'.join(i['dtypes'])}; {flags}]")
        for p in schema["params"]:
            default = p.get("default", "unset")
            lines.append(f"    param  {p['name']:<22} {p['type']:<7} default {default!s:<10} {p['range']}")
        for o in schema["outputs"]:
            lines.append(f"    output {o['name']:<22} {o['shape']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossd", description="losses and gradients as a service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC + HTTP server")
    settings_mod.add_arguments(serve)
    sub.add_parser("losses", help="print every loss with its inputs and parameters")
    warm = sub.add_parser("warm", help="compile a cold Numba cache (NUMBA_CACHE_DIR), one process per core")
    warm.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    args = parser.parse_args(argv)
    if args.command == "warm":
        from lossd import precompile

        return precompile.main([] if args.jobs is None else ["--jobs", str(args.jobs)])
    if args.command == "losses":
        print(_table())
        return 0
    settings = settings_mod.from_args(args)
    from lossd import logs, warmup

    logs.configure(settings.log_level, settings.log_format)
    # The kernels load in the background while the transports are imported and started.
    warming = warmup.start(defer_parallel=True) if settings.warmup else None
    from lossd.app import serve as run_server

    def announce(line: str) -> None:
        print(line, flush=True)

    return asyncio.run(run_server(settings, announce, warming))


if __name__ == "__main__":
    sys.exit(main())
