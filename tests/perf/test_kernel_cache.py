"""lossd's Numba cache (lossd.kernels.jitcache) and the parallel compile (lossd.precompile).

* An edited helper module never runs stale code: a copy of the lossd package gets a probe
  kernel that inlines a constant from a helper module (``losses/_probe.py``); after the
  cache is built, the constant changes and the next process computes the new value
  without any cache clearing (and an unchanged rerun loads from the cache).
* A cold parallel compile of several loss modules in worker processes sharing one cache
  directory leaves a cache from which a fresh process imports them with no compilation,
  and :func:`lossd.precompile.cold` then reports them warm.
* A failing worker fails the whole compile loudly.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
from numba.core import config

import lossd
from lossd import precompile

PACKAGE = pathlib.Path(lossd.__file__).resolve().parent

PROBE = textwrap.dedent("""
    import json, sys
    from lossd.kernels.jit import DISPATCHERS, f64, kernel
    from lossd.losses._probe import scaled

    @kernel([f64(f64)])
    def probe(x):
        return scaled(x)

    hits = sum(sum(d.stats.cache_hits.values()) for d in DISPATCHERS)
    misses = sum(sum(d.stats.cache_misses.values()) for d in DISPATCHERS)
    print(json.dumps({"value": probe(1.0), "hits": hits, "misses": misses}))
""")


def _run(code: str, env: dict[str, str], cwd: pathlib.Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_edited_helper_never_runs_stale_code(tmp_path: pathlib.Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(PACKAGE, tree / "lossd", ignore=shutil.ignore_patterns("__pycache__"))
    helper = tree / "lossd" / "losses" / "_probe.py"
    helper.write_text("from lossd.kernels.jit import inline\n\nSCALE = 2.0\n\n\n"
                      "@inline\ndef scaled(x):\n    return x * SCALE\n")
    (tree / "probe_kernel.py").write_text(PROBE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")] + sys.path)}
    code = "import probe_kernel"
    first = _run(code, env, tree)
    assert first == {"value": 2.0, "hits": 0, "misses": 1}
    again = _run(code, env, tree)
    assert again == {"value": 2.0, "hits": 1, "misses": 0}  # the cache is used
    helper.write_text(helper.read_text().replace("SCALE = 2.0", "SCALE = 3.0"))
    edited = _run(code, env, tree)
    assert edited == {"value": 3.0, "hits": 0, "misses": 1}  # recompiled, not loaded stale


MODULES = ["mse", "l1", "l2_loss"]

IMPORT = textwrap.dedent("""
    import importlib, json, sys
    from lossd import precompile
    from lossd.kernels.jit import DISPATCHERS
    mods = sys.argv[1:]
    cold = precompile.cold(mods)
    for m in precompile.targets(mods):
        importlib.import_module(m)
    misses = sum(sum(d.stats.cache_misses.values()) for d in DISPATCHERS)
    signatures = sum(len(d.signatures) for d in DISPATCHERS)
    print(json.dumps({"cold": cold, "misses": misses, "signatures": signatures}))
""")


def test_a_parallel_compile_leaves_a_complete_cache(tmp_path: pathlib.Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))  # the workers'
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "cache"))  # this process's
    todo = precompile.cold(MODULES)
    assert sorted(todo) == sorted(precompile.targets(MODULES))
    outcome = precompile.compile_parallel(todo, jobs=2)
    assert outcome.jobs == 2 and sorted(outcome.seconds) == sorted(todo)
    assert outcome.compilations > 0
    out = subprocess.run([sys.executable, "-c", IMPORT, *MODULES], env=dict(os.environ), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cold"] == []
    assert result["misses"] == 0, result
    assert result["signatures"] > 0


def test_a_failing_worker_fails_the_compile(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="no_such_loss") as info:
        precompile.compile_parallel(["lossd.losses.no_such_loss"], jobs=2)
    assert "ModuleNotFoundError" in str(info.value)


def test_a_warm_cache_starts_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precompile, "cold", lambda modules=(): [])
    monkeypatch.setattr(precompile, "compile_parallel", lambda *a: pytest.fail("started workers"))
    assert precompile.compile_cold(jobs=2).jobs == 0
