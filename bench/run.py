"""Run the whole benchmark suite and write ``bench/RESULTS.md`` (``make bench``).

    python -m bench.run                   # everything (a few minutes on 2 cores)
    BENCH_QUICK=1 python -m bench.run     # fewer rounds and shorter windows
    BENCH_ONLY=kernels,e2e python -m bench.run   # some sections (others keep their last JSON)
"""

from __future__ import annotations

import json
import os
import sys
import time

from bench import report

SECTIONS = ("kernels", "e2e", "peer", "system")


def versions() -> dict[str, str]:
    out = {}
    for mod in ("numpy", "numba", "grpc", "google.protobuf", "torch"):
        try:
            m = __import__(mod, fromlist=["__version__"])
            out[mod] = getattr(m, "__version__", "?")
        except ImportError:
            out[mod] = "not installed"
    return out


def main() -> int:
    quick = bool(os.environ.get("BENCH_QUICK"))
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s] or list(SECTIONS)
    os.makedirs(report.OUT, exist_ok=True)
    meta = {"quick": quick, "loadavg_start": [round(x, 2) for x in os.getloadavg()], "versions": {}}
    started = time.perf_counter()
    sections: dict[str, float] = {}
    for name in SECTIONS:
        if name not in only:
            continue
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        module = __import__(f"bench.{name}", fromlist=["run"])
        if name == "kernels":
            result = module.run(quick, [1, 2], None, log=lambda s: print(s, flush=True))
        else:
            result = module.run(quick, log=lambda s: print(s, flush=True))
        with open(os.path.join(report.OUT, f"{name}.json"), "w") as f:
            json.dump(result, f, indent=1)
        sections[name] = round(time.perf_counter() - t, 1)
        print(f"   {name}: {sections[name]:.0f} s", flush=True)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["versions"] = versions()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["sections"] = sections
    with open(os.path.join(report.OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    report.write()
    print("section timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in sections.items())
          + f"; total {meta['seconds']:.0f} s", flush=True)
    print("wrote bench/RESULTS.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
