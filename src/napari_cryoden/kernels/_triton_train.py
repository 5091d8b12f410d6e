"""Triton kernels of the fused seed-net training step; imported only by :mod:`.train` at launch.

The forward reuses ``conv12_kernel`` of :mod:`._triton_seed` (``h2`` fp16 NHWC). Then:

- ``conv3_loss_kernel`` (grid: tiles, batch): ``y = conv3(h2)``, the error ``e = y - target``
  stored fp16 ``(B, H, W)``, and per program ``(Σ e², Σ e)`` over its pixels.
- ``seed_backward_kernel`` (persistent grid: each program loops over tiles ``pid, pid + P, …``):
  every gradient but ``db3``, unscaled (the caller multiplies by ``2 / N``). Per tile it gathers
  ``E32``, the 5 × 5 window of ``e`` around each pixel ``q`` (zero padded, K = 32), and ``X16``,
  the 3 × 3 window of ``x`` with a column of ones (K = 16), recomputes ``h1[q] = relu(X16 · W1x)``
  and then, for each conv2 tap ``s``:

  - ``dz2[q - s] = (E32 · W3_s) ⊙ [h2[q - s] > 0]`` (``W3_s`` holds conv3's kernel at the window
    offsets ``-(s + s')``; ``h2`` loaded as zero outside the image, so ``dz2`` is too);
  - ``dh1[q] += dz2[q - s] · W2ᵀ_s`` and ``gW2_s += h1[q]ᵀ · dz2[q - s]``;
  - for ``s = 0`` also ``gb2 += Σ dz2[q]`` and ``gW3 += h2[q]ᵀ · E32`` (column ``-s'`` is tap s').

  After the taps ``dz1 = dh1 ⊙ [h1 > 0]`` and ``gW1 += X16ᵀ · dz1`` (row 9, the ones, is
  ``db1``). Each program stores its sums once, as ``9·C² + 16·C + 32·C + C`` floats.

Nothing is stored per pixel by the backward kernel and no atomics are used: the partial sums are
added up afterwards by ``torch.sum`` in a fixed order, so the gradients are deterministic.
The ``tl.constexpr`` annotations stay strings so that this module imports without Triton.
"""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
except ImportError:  # importable without Triton (the layering test imports every module)
    triton = None

_jit = triton.jit if triton is not None else (lambda fn: fn)

from ._triton_seed import conv3_tile  # noqa: E402 - after the Triton import guard


@_jit
def conv3_loss_kernel(h_ptr, w3_ptr, b3_ptr, t_ptr, e_ptr, part_ptr,
                      H, W, tiles_w, stb, sth, stw,
                      C: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr):
    acc, b, row0, col0, ir, ic, r, c = conv3_tile(h_ptr, w3_ptr, b3_ptr, H, W, tiles_w,
                                                  C, TH, TW)
    pid = tl.program_id(0)

    valid = (r < H) & (c < W)
    tb = t_ptr + b * stb + row0.to(tl.int64) * sth + col0.to(tl.int64) * stw
    target = tl.load(tb + ir * sth + ic * stw, mask=valid, other=0.0).to(tl.float32)
    err = tl.where(valid, acc - target, 0.0)
    eb = e_ptr + (b * H + row0) * W + col0
    tl.store(eb + ir * W + ic, err.to(tl.float16), mask=valid)
    slot = part_ptr + (b * tl.num_programs(0) + pid) * 2
    tl.store(slot, tl.sum(err * err, axis=0))
    tl.store(slot + 1, tl.sum(err, axis=0))


@_jit
def _tap(J: tl.constexpr, hb, e32, h1t, dh1, gw2, gb2, gw3, r, c, ir, ic, H, W, ch, k32,
         w3d_ptr, w2t_ptr, C: tl.constexpr):
    """One conv2 tap ``s`` of the backward pass (see the module docstring)."""
    sy = J // 3 - 1
    sx = J % 3 - 1
    inside = (r - sy >= 0) & (r - sy < H) & (c - sx >= 0) & (c - sx < W)
    ho = ((ir - sy) * W + (ic - sx))[:, None] * C + ch[None, :]
    h2 = tl.load(hb + ho, mask=inside[:, None], other=0.0)
    w3 = tl.load(w3d_ptr + J * 32 * C + k32[:, None] * C + ch[None, :])
    dz2 = tl.where(h2 > 0, tl.dot(e32, w3), 0.0).to(tl.float16)
    w2t = tl.load(w2t_ptr + J * C * C + ch[:, None] * C + ch[None, :])
    dh1 = tl.dot(dz2, w2t, dh1)
    gw2 = tl.dot(h1t, dz2, gw2)
    if J == 4:
        gb2 += tl.sum(dz2.to(tl.float32), axis=0)
        gw3 = tl.dot(tl.trans(h2), e32, gw3)
    return dh1, gw2, gb2, gw3


@_jit
def seed_backward_kernel(x_ptr, e_ptr, h_ptr, w1x_ptr, w3d_ptr, w2t_ptr, part_ptr,
                         H, W, tiles_w, tiles_img, n_tiles, sxb, sxh, sxw,
                         C: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    idx = tl.arange(0, TH * TW)
    ir = idx // TW
    ic = idx % TW
    ch = tl.arange(0, C)
    k16 = tl.arange(0, 16)
    ky = tl.where(k16 < 9, k16 // 3 - 1, 0)  # window columns past the taps read the centre
    kx = tl.where(k16 < 9, k16 % 3 - 1, 0)
    k32 = tl.arange(0, 32)
    dy = tl.where(k32 < 25, k32 // 5 - 2, 0)
    dx = tl.where(k32 < 25, k32 % 5 - 2, 0)
    xo = (ir[:, None] + ky[None, :]) * sxh + (ic[:, None] + kx[None, :]) * sxw
    eo = (ir[:, None] + dy[None, :]) * W + (ic[:, None] + dx[None, :])
    w1x = tl.load(w1x_ptr + k16[:, None] * C + ch[None, :])

    g0 = tl.zeros((C, C), dtype=tl.float32)
    g1 = tl.zeros((C, C), dtype=tl.float32)
    g2 = tl.zeros((C, C), dtype=tl.float32)
    g3 = tl.zeros((C, C), dtype=tl.float32)
    g4 = tl.zeros((C, C), dtype=tl.float32)
    g5 = tl.zeros((C, C), dtype=tl.float32)
    g6 = tl.zeros((C, C), dtype=tl.float32)
    g7 = tl.zeros((C, C), dtype=tl.float32)
    g8 = tl.zeros((C, C), dtype=tl.float32)
    gw1 = tl.zeros((16, C), dtype=tl.float32)
    gw3 = tl.zeros((C, 32), dtype=tl.float32)
    gb2 = tl.zeros((C,), dtype=tl.float32)
    for tile in range(pid, n_tiles, nprog):
        b = (tile // tiles_img).to(tl.int64)
        t = tile % tiles_img
        row0 = (t // tiles_w) * TH
        col0 = (t % tiles_w) * TW
        r = row0 + ir
        c = col0 + ic
        valid = (r < H) & (c < W)
        xp = x_ptr + b * sxb + row0.to(tl.int64) * sxh + col0.to(tl.int64) * sxw + xo
        ep = e_ptr + (b * H + row0) * W + col0 + eo
        if (row0 >= 2) & (row0 + TH + 2 <= H) & (col0 >= 2) & (col0 + TW + 2 <= W):
            x16 = tl.load(xp)  # interior tile: every window lies inside the image
            e32 = tl.load(ep)
        else:
            rr = r[:, None] + ky[None, :]
            cc = c[:, None] + kx[None, :]
            x16 = tl.load(xp, mask=(rr >= 0) & (rr < H) & (cc >= 0) & (cc < W), other=0.0)
            rr = r[:, None] + dy[None, :]
            cc = c[:, None] + dx[None, :]
            e32 = tl.load(ep, mask=(rr >= 0) & (rr < H) & (cc >= 0) & (cc < W), other=0.0)
        x16 = tl.where(k16[None, :] == 9, 1.0, x16.to(tl.float32)).to(tl.float16)
        h1 = tl.dot(x16, w1x)
        h1 = tl.where(valid[:, None], tl.maximum(h1, 0.0), 0.0).to(tl.float16)
        h1t = tl.trans(h1)

        hb = h_ptr + (b * H + row0) * W * C + col0 * C
        dh1 = tl.zeros((TH * TW, C), dtype=tl.float32)
        dh1, g0, gb2, gw3 = _tap(0, hb, e32, h1t, dh1, g0, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g1, gb2, gw3 = _tap(1, hb, e32, h1t, dh1, g1, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g2, gb2, gw3 = _tap(2, hb, e32, h1t, dh1, g2, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g3, gb2, gw3 = _tap(3, hb, e32, h1t, dh1, g3, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g4, gb2, gw3 = _tap(4, hb, e32, h1t, dh1, g4, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g5, gb2, gw3 = _tap(5, hb, e32, h1t, dh1, g5, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g6, gb2, gw3 = _tap(6, hb, e32, h1t, dh1, g6, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g7, gb2, gw3 = _tap(7, hb, e32, h1t, dh1, g7, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dh1, g8, gb2, gw3 = _tap(8, hb, e32, h1t, dh1, g8, gb2, gw3, r, c, ir, ic, H, W, ch,
                                 k32, w3d_ptr, w2t_ptr, C)
        dz1 = tl.where(h1 > 0, dh1, 0.0).to(tl.float16)
        gw1 = tl.dot(tl.trans(x16), dz1, gw1)

    base = part_ptr + pid.to(tl.int64) * (9 * C * C + 49 * C)
    cc2 = ch[:, None] * C + ch[None, :]
    tl.store(base + 0 * C * C + cc2, g0)
    tl.store(base + 1 * C * C + cc2, g1)
    tl.store(base + 2 * C * C + cc2, g2)
    tl.store(base + 3 * C * C + cc2, g3)
    tl.store(base + 4 * C * C + cc2, g4)
    tl.store(base + 5 * C * C + cc2, g5)
    tl.store(base + 6 * C * C + cc2, g6)
    tl.store(base + 7 * C * C + cc2, g7)
    tl.store(base + 8 * C * C + cc2, g8)
    base += 9 * C * C
    tl.store(base + k16[:, None] * C + ch[None, :], gw1)
    base += 16 * C
    tl.store(base + ch[:, None] * 32 + k32[None, :], gw3)
    tl.store(base + 32 * C + ch, gb2)
