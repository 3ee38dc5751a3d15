"""The loss reference tests once more with Numba bounds checking on (NUMBA_BOUNDSCHECK=1),
in a subprocess with its own temporary Numba cache (cache keys ignore boundscheck, so the
normal cache would hand back unchecked code).

Compiling every kernel again with checks costs minutes of CPU (done first by
``python -m lossd.precompile`` with the same environment, one process per core), so this runs in
``make boundscheck`` (which .ci/run calls), not in ``make test``: it is skipped unless
``LOSSD_BOUNDSCHECK=1``. The subset is every float64 test of tests/losses (every loss
file's reference cases; the float32 builds share the index logic).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SELECTION = os.environ.get("LOSSD_BOUNDSCHECK_SELECT", "float64")

pytestmark = pytest.mark.skipif(os.environ.get("LOSSD_BOUNDSCHECK") != "1",
                                reason="long: run by `make boundscheck`")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("numba-boundscheck-cache")
    return {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(cache)}


def test_bounds_checking_is_really_on(env: dict[str, str], tmp_path: pathlib.Path) -> None:
    """An out-of-bounds read through lossd's own kernel decorator raises IndexError."""
    canary = tmp_path / "canary.py"
    canary.write_text(textwrap.dedent("""
        import numpy as np
        from lossd.kernels.jit import f64, kernel, ro

        @kernel([f64(ro(f64))])
        def past_the_end(a):
            return a[a.shape[0]]

        try:
            past_the_end(np.zeros(3))
        except IndexError:
            print("IndexError")
    """))
    out = subprocess.run([sys.executable, str(canary)], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.strip() == "IndexError", out.stderr[-2000:]


def test_loss_reference_tests_with_bounds_checking(env: dict[str, str]) -> None:
    warm = subprocess.run([sys.executable, "-m", "lossd.precompile"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)  # the checked builds, one process per core
    assert warm.returncode == 0, warm.stderr[-3000:]
    print(warm.stdout.strip())
    out = subprocess.run([sys.executable, "-m", "pytest", "tests/losses", "-q", "-x", "-p",
                          "no:cacheprovider", "-k", SELECTION], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    tail = out.stdout[-3000:] + out.stderr[-2000:]
    print(tail.strip().splitlines()[-1])
    assert out.returncode == 0, tail
    assert " passed" in out.stdout and "IndexError" not in out.stdout, tail
