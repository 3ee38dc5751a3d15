"""Parallel kernels entered by several threads at once give the single-thread results
(the default Numba threading layer would abort the process here)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import lossd


def test_parallel_kernels_from_many_threads():
    rng = np.random.default_rng(0)
    cases = [
        ("mse", {"input": rng.normal(size=(300, 500)), "target": rng.normal(size=(300, 500))}, {}),
        ("mse", {"input": rng.normal(size=200_000).astype(np.float32),
                 "target": rng.normal(size=200_000).astype(np.float32)}, {"reduction": "sum"}),
        ("softmax_cross_entropy", {"input": rng.normal(size=(2000, 40)),
                                   "target": rng.integers(0, 40, 2000)}, {"label_smoothing": 0.2}),
    ]
    expected = [lossd.evaluate(name, inputs, params) for name, inputs, params in cases]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(lossd.evaluate, *cases[i % 3]) for i in range(60)]
        results = [f.result() for f in futures]
    for i, result in enumerate(results):
        ref = expected[i % 3]
        np.testing.assert_array_equal(result.loss, ref.loss)
        for name, grad in ref.grads.items():
            np.testing.assert_array_equal(result.grads[name], grad)
