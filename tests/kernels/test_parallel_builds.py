"""The parallel build of a :class:`lossd.kernels.jit.Dual` is its own parfor code.

Numba's cache key ignores ``parallel=True``: before lossd's cache keyed by it, the parallel
build (compiled second) loaded the serial build's machine code from the cache and never ran
in parallel. On an empty cache both builds of a dual kernel must compile (cache misses), the
parallel one into code with parfors; a second process loads each build from its own entry
and both compute the same values.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import json
    import numpy as np
    from lossd.kernels import finite

    def parfors(dispatcher):
        found = 0
        for cres in dispatcher.overloads.values():
            diagnostics = (cres.metadata or {}).get("parfor_diagnostics")  # None: loaded
            found += len(getattr(diagnostics, "initial_parfors", ()))
        return found

    bits = np.arange(100_003, dtype=np.int64)
    report = {}
    for name in ("serial", "parallel"):
        build = getattr(finite._max_exponent, name)
        report[name] = {"hits": sum(build.stats.cache_hits.values()),
                        "misses": sum(build.stats.cache_misses.values()),
                        "parfors": parfors(build),
                        "value": int(build(bits, 0x7FF0000000000000))}
    print(json.dumps(report))
""")


def _probe(cache: pathlib.Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_parallel_build_is_compiled_and_cached_on_its_own(tmp_path: pathlib.Path) -> None:
    cold = _probe(tmp_path / "cache")
    assert cold["serial"]["misses"] == 2 and cold["serial"]["hits"] == 0, cold
    assert cold["parallel"]["misses"] == 2 and cold["parallel"]["hits"] == 0, cold  # not the serial code
    assert cold["serial"]["parfors"] == 0 and cold["parallel"]["parfors"] > 0, cold
    warm = _probe(tmp_path / "cache")
    for name in ("serial", "parallel"):
        assert warm[name]["hits"] == 2 and warm[name]["misses"] == 0, warm
    assert cold["serial"]["value"] == cold["parallel"]["value"] == warm["parallel"]["value"]
