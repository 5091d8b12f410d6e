"""The Noise2Noise fine-tune's check on the sums: SURE from the halves, against the truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.models.pretrained import shipped_path
from napari_cryoden.training import adapt as adapt_module
from napari_cryoden.training.adapt import AdaptOptions, AdaptResult, adapt_steps
from napari_cryoden.training.adapt_sums import SumsCheck, sums_check


class Blur(nn.Module):
    """A fixed Gaussian blur of ``sigma`` px (0: the identity)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        radius = 6
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-x**2 / (2 * sigma**2)) if sigma > 0 else (x == 0).float()
        k = k / k.sum()
        self.register_buffer("kernel", (k[:, None] * k[None, :])[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(nn.functional.pad(x, (6,) * 4, mode="reflect"),
                                    self.kernel)


def _halves(seed: int = 0, size: int = 384) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth truth, and two halves with independent noise that neighbouring pixels share."""
    rng = np.random.default_rng(seed)
    truth = gaussian_filter(rng.normal(size=(size, size)), 4.0)
    truth = (truth / truth.std()).astype(np.float32)
    noise = [gaussian_filter(rng.normal(size=truth.shape), 0.7) for _ in range(2)]
    scale = 1.2 / np.std(noise[0])
    even, odd = (truth / 2 + scale * n for n in noise)
    return truth, even.astype(np.float32), odd.astype(np.float32)


def _true_change(start: nn.Module, tuned: nn.Module, truth: np.ndarray, even: np.ndarray,
                 odd: np.ndarray) -> float:
    total = even + odd
    mean, std = total.mean(), total.std()
    y = torch.from_numpy((total - mean) / std)[None, None]
    target = torch.from_numpy((truth - mean) / std)[None, None]
    with torch.no_grad():
        errors = [float(((net(y) - target) ** 2).mean()) for net in (start, tuned)]
    return errors[1] - errors[0]


@pytest.mark.parametrize(("start", "tuned"), [(0.0, 1.5), (1.5, 0.0), (1.5, 6.0)])
def test_the_check_tells_the_better_model_on_the_sums_as_the_truth_does(start: float,
                                                                         tuned: float) -> None:
    truth, even, odd = _halves()
    a, b = Blur(start), Blur(tuned)
    check = sums_check(a, b, [(even, odd)], "meanstd", 32, 0.5, 0, torch.device("cpu"))
    true = _true_change(a, b, truth, even, odd)
    assert check.better == (true < 0)
    assert check.change == pytest.approx(true, rel=0.3)
    assert abs(check.change) > 2 * check.error and check.n_patches == 64


def test_a_halves_fit_the_sums_check_rejects_keeps_the_starting_weights(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, even, odd = _halves(1, size=192)
    model, checkpoint = load_checkpoint(shipped_path("general-fast-v1"))
    worse = SumsCheck(change=-0.001, error=0.001, n_patches=7)  # lower, but within chance
    monkeypatch.setattr("napari_cryoden.training.adapt_sums.sums_check",
                        lambda *args, **kwargs: worse)
    options = AdaptOptions(device="cpu", patch_size=32, seconds=60, max_steps=40, evidence=0)
    *_, result = adapt_steps(model, [(even, odd)], checkpoint.normalization, options)
    assert isinstance(result, AdaptResult) and result.mode == "n2n"
    assert result.kept_start and result.sums_check == worse.summary()
    assert result.summary()["sums_check"] == {"mse_change": -0.001, "error": 0.001,
                                              "n_patches": 7, "evidence": 2.0, "passed": False}
    for key, value in model.state_dict().items():
        assert torch.equal(result.model.state_dict()[key].cpu(), value)
    assert adapt_module.AdaptOptions().check_sums
