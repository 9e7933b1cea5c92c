"""Reuse of returned gradient arrays (fastloss._buffers): only when the caller dropped them."""

import os
import threading

import numpy as np
import pytest

import fastloss
import fastloss.reference as ref
from fastloss import _buffers

N = 300_000  # float32: 1.2 MB, above the reuse threshold


@pytest.fixture(autouse=True)
def fresh_cache():
    old = fastloss.set_gradient_cache(512 << 20)
    fastloss.empty_gradient_cache()
    yield
    fastloss.set_gradient_cache(old)
    fastloss.empty_gradient_cache()


def _pair(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(N).astype(np.float32),
            rng.standard_normal(N).astype(np.float32))


def _mse_grad(x, t):
    return (2 * (x.astype(np.float64) - t) / x.size).astype(np.float32)


def test_reused_only_after_the_caller_drops_it():
    x, t = _pair(0)
    _, g1 = fastloss.mse_loss(x, t, return_grad=True)
    addr1 = g1.ctypes.data
    _, g2 = fastloss.mse_loss(t, x, return_grad=True)   # g1 still held: new memory
    assert not np.shares_memory(g1, g2)
    np.testing.assert_allclose(g1, _mse_grad(x, t), rtol=1e-6)
    np.testing.assert_allclose(g2, _mse_grad(t, x), rtol=1e-6)
    del g1
    loss, g3 = fastloss.mse_loss(x, 2 * t, return_grad=True)  # g1's memory, rewritten
    assert g3.ctypes.data == addr1
    np.testing.assert_allclose(g3, _mse_grad(x, 2 * t), rtol=1e-6)
    np.testing.assert_allclose(loss, ref.mse_loss(x.astype(np.float64), 2 * t), rtol=1e-6)
    np.testing.assert_allclose(g2, _mse_grad(t, x), rtol=1e-6)  # untouched


@pytest.mark.parametrize("holder", ["view", "view of a view", "list", "torch"])
def test_anything_referencing_it_keeps_it_out_of_reuse(holder):
    x, t = _pair(1)
    _, g = fastloss.mse_loss(x, t, return_grad=True)
    want = g.copy()
    if holder == "view":
        kept, want = g[::3], want[::3]
    elif holder == "view of a view":
        # NumPy makes the buffer under both the base of a view of a view,
        # not the array fastloss handed out
        kept, want = g[::3][1:], want[::3][1:]
    elif holder == "list":
        kept = [g]
    else:
        torch = pytest.importorskip("torch")
        kept = torch.from_numpy(g)
    addr = g.ctypes.data
    del g
    for k in range(3):  # more calls than the arrays kept per shape
        _, g2 = fastloss.mse_loss(x + k, t, return_grad=True)
        assert g2.ctypes.data != addr
    back = np.asarray(kept[0] if holder == "list" else kept)
    np.testing.assert_array_equal(back, want)


def test_kept_arrays_start_on_a_cache_line():
    # whole lines for the kernels' streamed stores, new or reused
    x, t = _pair(2)
    for dtype in (np.float32, np.float64):
        for _ in range(3):
            _, g = fastloss.mse_loss(x.astype(dtype), t.astype(dtype), return_grad=True)
            assert g.ctypes.data % 64 == 0 and g.flags.c_contiguous and g.dtype == dtype
            np.testing.assert_allclose(g, _mse_grad(x, t), rtol=1e-5)


def test_every_family_and_dtype_gets_correct_gradients_from_reused_arrays():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2048, 200))
    y = rng.integers(0, 200, 2048)
    first = fastloss.cross_entropy(x, y, return_grad=True)[1].copy()
    for _ in range(3):  # drop and reuse
        g = fastloss.cross_entropy(x, y, return_grad=True)[1]
        np.testing.assert_array_equal(g, first)
        del g
    lab = rng.integers(0, 3, (2, 64, 64, 32))
    seg = rng.standard_normal((2, 3, 64, 64, 32)).astype(np.float32)
    d1 = fastloss.dice_loss(seg, lab, return_grad=True)[1].copy()
    for _ in range(3):
        d = fastloss.dice_loss(seg, lab, return_grad=True)[1]
        np.testing.assert_array_equal(d, d1)
        del d


def test_limit_off_small_and_trim():
    x, t = _pair(3)
    assert fastloss.set_gradient_cache(0) == 512 << 20
    _, g = fastloss.mse_loss(x, t, return_grad=True)
    addr = g.ctypes.data
    del g
    assert fastloss.get_gradient_cache() == (0, 0)
    fastloss.set_gradient_cache(4 << 20)
    _, g = fastloss.mse_loss(x, t, return_grad=True)
    assert fastloss.get_gradient_cache() == (4 << 20, g.nbytes)
    fastloss.set_gradient_cache(g.nbytes - 1)          # lowering the limit drops it
    assert fastloss.get_gradient_cache()[1] == 0
    del g, addr
    small = np.ones(1000, np.float32)
    fastloss.set_gradient_cache(4 << 20)
    fastloss.mse_loss(small, small, return_grad=True)   # below MIN_BYTES: not kept
    assert fastloss.get_gradient_cache()[1] == 0
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        fastloss.set_gradient_cache(-1)
    with pytest.raises(TypeError, match="max_bytes must be an int"):
        fastloss.set_gradient_cache(1.5)


def test_at_most_keep_per_shape_and_lru_within_the_limit():
    arrays = [_buffers.gradient_array((N,), np.float32) for _ in range(4)]
    assert [r for _, r in arrays] == [False] * 4
    assert fastloss.get_gradient_cache()[1] == _buffers.KEEP * N * 4
    fastloss.set_gradient_cache(3 * N * 4)
    other = _buffers.gradient_array((N, 2), np.float32)[0]  # 2 N: the oldest of (N,) goes
    assert fastloss.get_gradient_cache()[1] == 3 * N * 4
    del arrays, other
    a, reused = _buffers.gradient_array((N, 2), np.float32)
    assert reused


def test_env_setting(monkeypatch):
    monkeypatch.setenv("FASTLOSS_GRADIENT_CACHE", "0")
    assert _buffers._env_max() == 0
    monkeypatch.setenv("FASTLOSS_GRADIENT_CACHE", "lots")
    with pytest.raises(ValueError, match="FASTLOSS_GRADIENT_CACHE must be a number of bytes"):
        _buffers._env_max()
    monkeypatch.setenv("FASTLOSS_GRADIENT_CACHE", "-5")
    with pytest.raises(ValueError, match="must be >= 0"):
        _buffers._env_max()


def test_threads_never_share_a_gradient():
    x, t = _pair(4)
    want = {k: _mse_grad(x * (k + 1), t) for k in range(4)}
    errors = []

    def work(k):
        for _ in range(20):
            _, g = fastloss.mse_loss(x * (k + 1), t, return_grad=True, n_threads=1)
            # another thread's call must not write into g while it is held here
            for _ in range(3):
                if not np.allclose(g, want[k], rtol=1e-6):
                    errors.append(k)
            del g

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert errors == []


def test_multi_gradient_functions_use_the_cache_too():
    rng = np.random.default_rng(5)
    w = rng.standard_normal(N).astype(np.float32)
    _, (g,) = fastloss.l2_penalty(w, return_grad=True)
    addr = g.ctypes.data
    del g
    _, (g,) = fastloss.l2_penalty(3 * w, return_grad=True)
    assert g.ctypes.data == addr
    np.testing.assert_allclose(g, 6 * w, rtol=1e-6)
    a, p, q = (rng.standard_normal((3000, 100)) for _ in range(3))
    want = [x.copy() for x in fastloss.triplet_margin_loss(a, p, q, return_grad=True)[1]]
    for _ in range(2):
        got = fastloss.triplet_margin_loss(a, p, q, return_grad=True)[1]
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)
        del got


def test_a_loss_with_three_gradients_reuses_all_of_them_in_a_loop():
    # triplet returns three arrays of one shape and dtype: a loop that still
    # holds the previous step's three while the next is computed needs six
    # kept, or every step writes fresh (zeroed-by-the-OS) pages
    rng = np.random.default_rng(5)
    a, p, n = (rng.standard_normal((1024, 512)).astype(np.float32) for _ in range(3))
    want = [g.copy() for g in fastloss.triplet_margin_loss(a, p, n, return_grad=True)[1]]
    prev = fastloss.triplet_margin_loss(a, p, n, return_grad=True)[1]
    for _ in range(4):
        grads = fastloss.triplet_margin_loss(a, p, n, return_grad=True)[1]
        assert not any(np.shares_memory(g, h) for g in grads for h in prev)
        for g, w in zip(grads, want):
            np.testing.assert_array_equal(g, w)
        kept = [k for arrs in _buffers._kept.values() for k in arrs]
        assert len(kept) == 6   # two steps' worth, alternating
        assert all(any(g is k for k in kept) for g in grads)
        prev = grads


def test_half_embeddings_reuse_their_gradients_with_the_same_bits():
    # bfloat16 / float16 triplets and pairs: a reused gradient array (here
    # streamed: conftest streams every reused output) starts on a line and
    # its rows (512 values) are whole lines, written with non-temporal
    # stores; the same bits as a fresh array, which takes ordinary ones
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(6)
    for hd in (ml_dtypes.bfloat16, np.float16):
        a, p, n = (rng.standard_normal((1100, 512)).astype(hd) for _ in range(3))
        lab = rng.integers(0, 2, 1100)
        for fn, args in ((fastloss.triplet_margin_loss, (a, p, n)),
                         (fastloss.contrastive_loss, (a, p, lab))):
            def call():
                return fn(*args, return_grad=True)   # noqa: B023 (called in this loop)
            fastloss.empty_gradient_cache()
            loss0, grads = call()
            want = [g.copy() for g in grads]
            addrs = {g.ctypes.data for g in grads}
            for _ in range(2):
                for g in grads:   # what the next call must overwrite, all of it
                    g[...] = np.nan
                del grads, g
                loss, grads = call()
                assert {g.ctypes.data for g in grads} == addrs   # reused
                assert loss == loss0 and all(g.ctypes.data % 64 == 0 for g in grads)
                assert all(g.dtype == hd and g.tobytes() == w.tobytes()
                           for g, w in zip(grads, want))


def test_streamed_stores_only_for_outputs_larger_than_the_cache(monkeypatch):
    # conftest streams every reused output; here the real threshold: the
    # largest CPU cache (sysfs), at most 32 MiB, and 32 MiB where the OS
    # does not say
    from fastloss import _validate as V

    monkeypatch.setattr(_buffers, "_stream_bytes", None)
    limit = _buffers.stream_bytes()
    assert 1 << 20 <= limit <= _buffers.STREAM_MAX_BYTES == 32 << 20
    base = "/sys/devices/system/cpu/cpu0/cache"
    sizes = []
    for e in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if e.startswith("index") and os.path.exists(f"{base}/{e}/size"):
            with open(f"{base}/{e}/size") as f:
                text = f.read().strip()
            sizes.append(int(text.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(text[-1], 0))
    # the folder's other files (uevent) must not end the scan
    assert limit == (min(max(sizes), 32 << 20) if sizes else 32 << 20)
    small = np.empty(1 << 18, np.float32)   # 1 MiB
    g, stream = V.grad_array(small, small.shape, np.float32)
    assert g is small and stream == (limit <= small.nbytes)
    big = np.empty(limit // 4 + 16, np.float32)
    g, stream = V.grad_array(big, big.shape, np.float32)
    assert g is big and stream
    g, stream = V.grad_array(None, small.shape, np.float32)   # new: never streamed
    assert not stream
    x, t = _pair(9)
    want = fastloss.mse_loss(x, t, return_grad=True)[1].copy()
    out = np.full_like(x, np.nan)
    np.testing.assert_array_equal(fastloss.mse_loss(x, t, return_grad=True, grad_out=out)[1],
                                  want)
