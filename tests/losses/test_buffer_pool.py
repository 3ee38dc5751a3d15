"""losses/_pool.py: large output buffers are recycled only once nothing refers to them."""

from __future__ import annotations

import threading

import numpy as np

from lossd.core.evaluate import evaluate
from lossd.losses._pool import POOL, BufferPool

N = 1 << 19  # 2 MiB of float32: pooled
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def _pair(seed: int, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {"input": rng.standard_normal(N).astype(dtype), "target": rng.standard_normal(N).astype(dtype)}


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_results_still_held_are_never_reused():
    first = evaluate("mse", _pair(1), {"reduction": "none"})
    kept = {k: v.copy() for k, v in first.grads.items()}, first.loss.copy()
    for seed in range(2, 5):
        evaluate("mse", _pair(seed), {"reduction": "none"})
    np.testing.assert_array_equal(first.grads["input"], kept[0]["input"])
    np.testing.assert_array_equal(first.grads["target"], kept[0]["target"])
    np.testing.assert_array_equal(first.loss, kept[1])


def test_a_view_or_memoryview_keeps_its_buffer():
    result = evaluate("l1", _pair(1))
    view = result.grads["input"].reshape(2, -1)[:, ::3]
    mem = memoryview(result.grads["target"])
    expected_view, expected_mem = view.copy(), bytes(mem)
    del result
    for seed in range(2, 5):
        evaluate("l1", _pair(seed))
    np.testing.assert_array_equal(view, expected_view)
    assert bytes(mem) == expected_mem


def test_released_buffers_are_reused():
    POOL.clear()  # only this test's two gradient buffers in the pool
    result = evaluate("mse", _pair(1))
    addresses = {_address(g) for g in result.grads.values()}
    del result
    again = evaluate("mse", _pair(2))
    assert {_address(g) for g in again.grads.values()} == addresses


def test_small_arrays_are_not_pooled():
    pool = BufferPool(min_bytes=1 << 20, max_bytes=1 << 30)
    a = pool.empty((10, 10), F32)
    assert a.shape == (10, 10) and pool.held_bytes() == 0


def test_the_cap_drops_free_arrays_and_never_busy_ones():
    pool = BufferPool(min_bytes=1, max_bytes=1000)
    busy = pool.empty(100, F64)  # 800 bytes, kept
    other = pool.empty(50, F32)  # 200 bytes: fits exactly
    assert pool.held_bytes() == 1000
    del other
    third = pool.empty(40, F32)  # the free 200 bytes are dropped for it
    assert pool.held_bytes() == 960
    fourth = pool.empty(60, F32)  # does not fit next to busy + third: not pooled
    assert pool.held_bytes() == 960 and fourth.size == 60
    assert pool.empty(100, F64) is not busy
    del busy, third


def test_shape_and_dtype_must_match():
    pool = BufferPool(min_bytes=1, max_bytes=1 << 20)
    a = pool.empty((4, 8), F32)
    address = _address(a)
    del a
    assert _address(pool.empty(32, F64)) != address
    b = pool.empty((8, 4), F32)
    assert b.shape == (8, 4) and _address(b) == address


def test_concurrent_calls_get_their_own_buffers():
    inputs = [_pair(seed, np.float64) for seed in range(8)]
    expected = [2.0 * (p["input"] - p["target"]) / N for p in inputs]
    errors: list[str] = []

    def work(k: int) -> None:
        for _ in range(5):
            grads = evaluate("mse", inputs[k]).grads["input"]
            if not np.allclose(grads, expected[k], rtol=1e-12, atol=0):
                errors.append(f"thread {k}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and POOL.held_bytes() <= POOL.max_bytes


def test_forgotten_buffers_leave_the_pool_and_stay_valid():
    POOL.clear()
    result = evaluate("mse", _pair(1), {"reduction": "none"})
    arrays = [result.loss, *result.grads.values()]
    assert POOL.held_bytes() == sum(a.nbytes for a in arrays)
    kept = [a.copy() for a in arrays]
    POOL.forget(arrays)
    assert POOL.held_bytes() == 0
    addresses = {_address(a) for a in arrays}
    again = evaluate("mse", _pair(2), {"reduction": "none"})  # new buffers: the old are still held
    assert addresses.isdisjoint(_address(a) for a in [again.loss, *again.grads.values()])
    for a, k in zip(arrays, kept):
        np.testing.assert_array_equal(a, k)


def test_forget_reaches_the_pooled_base_of_a_reshaped_result():
    pool = BufferPool(min_bytes=1 << 10, max_bytes=1 << 30)
    a = pool.empty((4, 1 << 10), F32)
    assert a.base is not None and pool.held_bytes() == a.nbytes
    pool.forget([a[1:]])
    assert pool.held_bytes() == 0
