"""Weights of the seed net in the training kernels' layouts, and gradients back to torch's.

Everything is done on the weights' device by index gathers from maps built once per device, so a
training step packs its weights without synchronising with the host. Layouts (C hidden channels):

- forward: :class:`.fused.PackedSeedNet` (as :func:`.fused.pack_weights`, computed on device);
- ``w1x`` (16, C) fp16: conv1's 9 taps, ``b1`` in row 9, zeros: ``h1 = relu(X16 · w1x)``;
- ``w3_dot`` (9, 32, C) fp16: for conv2 tap ``s``, conv3's kernel placed in the 5 × 5 window
  of the error at offsets ``-(s + s')``: ``dh2[q - s] = E32[q] · w3_dot[s]``;
- ``w2t`` (9, C, C) fp16: conv2's kernel as ``[tap, out, in]``: ``dh1 += dz2_s · w2t[s]``.
"""

from __future__ import annotations

import torch

from .fused import PackedSeedNet

__all__ = ["pack_training", "unpack_gradients"]


_MAPS: dict[str, dict[str, torch.Tensor]] = {}


def _maps(device: torch.device) -> dict[str, torch.Tensor]:
    """Index maps from the torch weight layouts to the kernels' (built once per device)."""
    key = str(device)
    if key not in _MAPS:
        w1_dot = torch.full((9, 32), 10)  # rows of [w1 taps (9), b1, zeros]
        w3_dot = torch.full((9, 32), 9)  # rows of [w3 taps (9), zeros]
        for s in range(9):
            sy, sx = s // 3 - 1, s % 3 - 1
            for k in range(9):
                ky, kx = k // 3 - 1, k % 3 - 1
                w1_dot[s, (sy + ky + 2) * 5 + sx + kx + 2] = k
                w3_dot[s, (2 - sy - ky) * 5 + 2 - sx - kx] = k
            w1_dot[s, 25] = 9
        w3_grad = torch.tensor([(2 - s // 3 + 1) * 5 + 2 - s % 3 + 1 for s in range(9)])
        w1x = torch.tensor(list(range(10)) + [10] * 6)
        _MAPS[key] = {name: t.to(device) for name, t in
                      (("w1_dot", w1_dot), ("w3_dot", w3_dot), ("w3_grad", w3_grad),
                       ("w1x", w1x))}
    return _MAPS[key]


def pack_training(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                  w3: torch.Tensor, b3: torch.Tensor
                  ) -> tuple[PackedSeedNet, dict[str, torch.Tensor]]:
    """Pack the parameters in torch's layouts for the forward and backward kernels.

    Returns the forward's :class:`PackedSeedNet` and the backward's ``w1x``, ``w3_dot``,
    ``w2t``; this takes ~15 tiny device kernels and no host sync.
    """
    chans = w1.shape[0]
    maps = _maps(w1.device)
    f16, f32 = torch.float16, torch.float32
    taps1 = w1.detach().reshape(chans, 9).t().float()
    table1 = torch.cat([taps1, b1.detach().float()[None], taps1.new_zeros(1, chans)])
    taps3 = w3.detach().reshape(chans, 9).t().float()
    table3 = torch.cat([taps3, taps3.new_zeros(1, chans)])
    w2d = w2.detach()
    packed = PackedSeedNet(
        channels=chans,
        w1_dot=table1[maps["w1_dot"]].to(f16),
        w1_fma=taps1.contiguous(),
        b1=b1.detach().to(f32).contiguous(),
        w2=w2d.permute(2, 3, 1, 0).reshape(9, chans, chans).to(f16).contiguous(),
        b2=b2.detach().to(f32).contiguous(),
        w3=taps3.contiguous(),
        b3=b3.detach().to(f32).reshape(1).contiguous(),
    )
    backward = {
        "w1x": table1[maps["w1x"]].to(f16),
        "w3_dot": table3[maps["w3_dot"]].to(f16),
        "w2t": w2d.permute(2, 3, 0, 1).reshape(9, chans, chans).to(f16).contiguous(),
    }
    return packed, backward


def unpack_gradients(total: torch.Tensor, db3: torch.Tensor, chans: int,
                     device: torch.device) -> list[torch.Tensor]:
    """Unpack the backward kernel's summed partials and ``db3`` into torch's layouts.

    ``total`` holds ``9·C² + 49·C`` values: gW2 per tap ``[in, out]``, gW1 ``[window tap,
    out]`` with db1 in row 9, gW3 ``[in, window offset]``, db2. Returns dW1, db1, dW2, db2,
    dW3, db3.
    """
    n2, n1 = 9 * chans * chans, 16 * chans
    g2 = total[:n2].reshape(9, chans, chans)  # tap, in, out
    g1 = total[n2:n2 + n1].reshape(16, chans)  # window tap (+ ones at 9), out
    g3 = total[n2 + n1:n2 + n1 + 32 * chans].reshape(chans, 32)  # in, 5x5 window offset
    return [g1[:9].t().reshape(chans, 1, 3, 3), g1[9],
            g2.permute(2, 1, 0).reshape(chans, chans, 3, 3), total[n2 + n1 + 32 * chans:],
            g3[:, _maps(device)["w3_grad"]].reshape(1, chans, 3, 3), db3.reshape(1)]
