"""The words a form shows for each config field and its choices, in the field's language.

The config keys, the stored values and the CLI flags keep their short developer names (``lr``,
``amp``, ``n2v``); a form (the napari Train panel) shows :data:`LABELS` and
:data:`CHOICE_LABELS` instead, read into each field's
:class:`~napari_cryoden.config.spec.FieldSpec` (``title``, ``choice_title``).
"""

from __future__ import annotations

__all__ = ["CHOICE_LABELS", "LABELS"]

LABELS: dict[str, str] = {
    "model.preset": "network",
    "model.channels": "feature channels",
    "model.depth": "convolution layers",
    "model.kernel_size": "kernel size (px)",
    "data.patch_size": "patch size (px)",
    "data.crop": "random crop (px)",
    "data.normalization": "normalisation",
    "data.val_fraction": "validation fraction",
    "data.shuffle_buffer": "shuffle buffer (patches)",
    "data.reader_threads": "reader threads",
    "train.batch_size": "batch size (patches)",
    "train.lr": "learning rate",
    "train.seed": "random seed",
    "train.amp": "mixed precision (GPU)",
    "train.precision": "GPU arithmetic",
    "train.fused": "fused GPU kernels",
    "train.schedule": "learning-rate schedule",
    "train.plateau_patience": "plateau patience (epochs)",
    "train.mode": "training data",
    "train.n2v_fraction": "masked pixels (Noise2Void)",
    "train.init": "start from model (file or name)",
    "train.noise_colour": "noise colour σ LO:HI (px)",
}
"""``"section.field"`` → its label; a field not listed shows its name with spaces."""

CHOICE_LABELS: dict[str, dict[str, str]] = {
    "train.mode": {"n2c": "noisy → clean pairs", "n2n": "even/odd frame sums (Noise2Noise)",
                   "n2v": "single noisy micrographs (Noise2Void)"},
    "data.normalization": {"meanstd": "mean/std", "percentile": "percentiles (0.5–99.5 %)"},
    "train.device": {"auto": "automatic (GPU if there is one)", "cpu": "CPU",
                     "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)"},
    "train.precision": {"fp32": "full precision (fp32)", "tf32": "fast matrix maths (tf32)",
                        "fp16": "half precision (fp16)", "bf16": "half precision (bf16)"},
    "train.schedule": {"cosine": "cosine decay to 0", "plateau": "halve on a plateau"},
}
"""``"section.field"`` → {stored value → its words}; a value not listed shows itself."""
