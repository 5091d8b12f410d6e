"""Triton kernels of the fused seed net; imported only by :mod:`.fused`, never at package import.

Two kernels, each over 2D tiles ``TH × TW`` of one image (grid: tiles, batch):

- ``conv12_kernel``: ``h2 = relu(conv2(relu(conv1(x))))`` stored fp16 NHWC ``(B, H, W, C)``.
  For each of conv2's 9 taps ``s`` it recomputes ``h1`` at the shifted pixels ``p + s`` (zero
  where ``p + s`` is outside the image: conv2 zero-pads ``h1``) and accumulates
  ``dot(h1_s, W2_s)`` in fp32. ``CONV1_DOT`` picks how ``h1_s`` is made: on tensor cores as
  ``dot(X25, W1_s)`` with ``X25`` the 5 × 5 neighbourhood of each pixel (25 taps, a column of
  ones for the bias, zero-padded to 32) and ``W1_s`` conv1's kernel placed at offset ``s`` in
  that window; or on CUDA cores by 9 FMAs per channel from 9 shifted loads of ``x``.
- ``conv3_kernel``: ``y = b3 + sum_s <h2[p + s], w3_s>`` with zero padding, stored in ``y``'s dtype.

Only :mod:`.fused` imports this module, when a kernel is launched. Offsets inside a tile are int32
relative to the tile's origin (at most ``(TH + 1) · W · C``); the origin is int64, so any batch is
safe. The ``tl.constexpr`` annotations stay strings (Triton reads them so), which lets this module
import without Triton: the kernels are then plain, unusable functions.
"""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
except ImportError:  # importable without Triton (the layering test imports every module)
    triton = None

_jit = triton.jit if triton is not None else (lambda fn: fn)


@_jit
def tile_coords(tiles_w, TH: tl.constexpr, TW: tl.constexpr):
    """Locate the program's tile: batch index, origin, and each pixel's (row, column).

    The pixel coordinates are given in the tile and in the image, flattened to ``TH * TW``.
    """
    pid = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    row0 = (pid // tiles_w) * TH
    col0 = (pid % tiles_w) * TW
    idx = tl.arange(0, TH * TW)
    ir = idx // TW
    ic = idx % TW
    return b, row0, col0, ir, ic, row0 + ir, col0 + ic


@_jit
def conv3_tile(h_ptr, w3_ptr, b3_ptr, H, W, tiles_w,
               C: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr):
    """Compute ``b3 + sum_s <h2[p + s], w3_s>`` (zero padding) for this program's tile.

    The result is in fp32, one value per pixel of the tile, returned with the tile's
    coordinates (as :func:`tile_coords`).
    """
    b, row0, col0, ir, ic, r, c = tile_coords(tiles_w, TH, TW)
    ch = tl.arange(0, C)
    hb = h_ptr + (b * H + row0) * W * C + col0 * C
    acc = tl.zeros((TH * TW,), dtype=tl.float32) + tl.load(b3_ptr)
    for j in tl.static_range(9):
        sy = j // 3 - 1
        sx = j % 3 - 1
        inside = (r + sy >= 0) & (r + sy < H) & (c + sx >= 0) & (c + sx < W)
        ho = ((ir + sy) * W + (ic + sx))[:, None] * C + ch[None, :]
        v = tl.load(hb + ho, mask=inside[:, None], other=0.0).to(tl.float32)
        w3 = tl.load(w3_ptr + j * C + ch)
        acc += tl.sum(v * w3[None, :], axis=1)
    return acc, b, row0, col0, ir, ic, r, c


@_jit
def conv12_kernel(x_ptr, w1d_ptr, w1f_ptr, b1_ptr, w2_ptr, b2_ptr, h_ptr,
                  H, W, tiles_w, sxb, sxh, sxw,
                  C: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr,
                  CONV1_DOT: tl.constexpr):
    b, row0, col0, ir, ic, r, c = tile_coords(tiles_w, TH, TW)
    ch = tl.arange(0, C)
    xb = x_ptr + b * sxb + row0.to(tl.int64) * sxh + col0.to(tl.int64) * sxw

    if CONV1_DOT:
        t = tl.arange(0, 32)
        dy = t // 5 - 2
        dx = t % 5 - 2
        rr = r[:, None] + dy[None, :]
        cc = c[:, None] + dx[None, :]
        m = (t[None, :] < 25) & (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
        xo = (ir[:, None] + dy[None, :]) * sxh + (ic[:, None] + dx[None, :]) * sxw
        x25 = tl.load(xb + xo, mask=m, other=0.0).to(tl.float32)
        x25 = tl.where(t[None, :] == 25, 1.0, x25).to(tl.float16)

    acc = tl.zeros((TH * TW, C), dtype=tl.float32)
    for j in tl.static_range(9):
        sy = j // 3 - 1
        sx = j % 3 - 1
        rs = r + sy
        cs = c + sx
        inside = (rs >= 0) & (rs < H) & (cs >= 0) & (cs < W)
        if CONV1_DOT:
            w1 = tl.load(w1d_ptr + j * 32 * C + t[:, None] * C + ch[None, :])
            h1 = tl.dot(x25, w1)
        else:
            h1 = tl.zeros((TH * TW, C), dtype=tl.float32) + tl.load(b1_ptr + ch)[None, :]
            for k in tl.static_range(9):
                ky = k // 3 - 1
                kx = k % 3 - 1
                mk = (rs + ky >= 0) & (rs + ky < H) & (cs + kx >= 0) & (cs + kx < W)
                xo1 = (ir + sy + ky) * sxh + (ic + sx + kx) * sxw
                xv = tl.load(xb + xo1, mask=mk, other=0.0).to(tl.float32)
                wk = tl.load(w1f_ptr + k * C + ch)
                h1 += xv[:, None] * wk[None, :]
        h1 = tl.where(inside[:, None], tl.maximum(h1, 0.0), 0.0).to(tl.float16)
        w2 = tl.load(w2_ptr + j * C * C + ch[:, None] * C + ch[None, :])
        acc += tl.dot(h1, w2)

    h2 = tl.maximum(acc + tl.load(b2_ptr + ch)[None, :], 0.0).to(tl.float16)
    hb = h_ptr + (b * H + row0) * W * C + col0 * C
    ho = (ir * W + ic)[:, None] * C + ch[None, :]
    valid = (r < H) & (c < W)
    tl.store(hb + ho, h2, mask=valid[:, None])


@_jit
def conv3_kernel(h_ptr, w3_ptr, b3_ptr, y_ptr,
                 H, W, tiles_w, syb, syh, syw,
                 C: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr):
    acc, b, row0, col0, ir, ic, r, c = conv3_tile(h_ptr, w3_ptr, b3_ptr, H, W, tiles_w,
                                                  C, TH, TW)

    yb = y_ptr + b * syb + row0.to(tl.int64) * syh + col0.to(tl.int64) * syw
    valid = (r < H) & (c < W)
    tl.store(yb + ir * syh + ic * syw, acc, mask=valid)
