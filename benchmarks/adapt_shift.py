"""Adapting the shipped model to micrographs unlike its training data: PSNR vs noise-free truth.

Usage::

    python benchmarks/adapt_shift.py [--model general] [--seconds 60] [--device cpu] [--seed S]
                                     [--lr LR] [--evidence K] [--n2v-fraction F] [--val-passes P]
                                     [--no-noise-check] [--no-sums-check]
                                     [--size 512] [--test-n 3] [--test-size 384]
                                     [--halves] [--physics [--cache DIR] [--adapt-n N]]
                                     [--hold-out-micrographs] [--only NAME ...]
                                     [--json OUT.json]

For each shifted condition (a dose, pixel size, detector or specimen outside what
``scripts/train_general_model.sh`` trained ``general`` on: dose 10-60 e/Å², 0.6-2.5 Å/px,
contrast ×1-×20, read noise 0.01), simulates ONE micrograph of ``--size``² to adapt on and
``--test-n`` held-out micrographs of ``--test-size``² (other seeds), then adapts the model on the
one micrograph in the time box (what ``cryoden adapt MODEL mic.mrc -o OUT.safetensors`` does)
and scores the start and the adapted model on the held-out micrographs against their noise-free
truth (PSNR, data range 1). Baseline: the Gaussian filter best on the held-out truth (an oracle).
``--halves`` adapts by Noise2Noise on two half-dose exposures of the micrograph instead of the
blind-spot objective on the whole one. Prints a Markdown table; ``--json`` writes the rows
(with ``--halves`` also ``judged_patches_truth``: both models' true squared error on the
held-out patches of the adapted sum, what the sums check estimates).

``--physics`` uses physics-grade micrographs (docs/simulator.md) outside what
``scripts/train_physics_models.sh`` trained today's ``general`` on (pixel 1-2.5 Å, dose 15-60
e/Å², 20-40 frames, 300 kV, ice 200-800 Å): the test for the shipped default. Their halves are
the movie's even and odd frame sums. ``--cache DIR`` keeps the simulated conditions as .npz (the
physics simulation needs ttsim3d; a GPU box without it can run from a cache made here).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_cryoden.data.normalize import fit_normalizer
from napari_cryoden.errors import InputError
from napari_cryoden.evaluation.metrics import psnr
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.models.pretrained import resolve_model
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.optics import expose
from napari_cryoden.simulation.params import SimulationParams
from napari_cryoden.training.adapt import AdaptOptions, AdaptResult, adapt_steps
from napari_cryoden.training.adapt_data import held_out_boxes

CONDITIONS: dict[str, dict[str, Any]] = {
    "pixel 0.4 Å, 40 e/Å²": dict(pixel_size=0.4, dose=40.0, contrast_scale=10.0),
    "read noise 0.2, 20 e/Å²": dict(read_noise=0.2, dose=20.0, contrast_scale=10.0),
    "dose 300 e/Å², ×10": dict(dose=300.0, contrast_scale=10.0),
    "elongated only, 3 e/Å², ×40": dict(dose=3.0, contrast_scale=40.0,
                                       particle_kinds=("elongated",), particle_weights=(1.0,)),
}
PHYSICS_CONDITIONS: dict[str, dict[str, Any]] = {
    "pixel 0.6 Å, 40 e/Å²": dict(specimen={"pixel_size": (0.6, 0.6)},
                                exposure={"dose": (40.0, 40.0)}),
    "dose 5 e/Å²": dict(specimen={"pixel_size": (1.5, 1.5)}, exposure={"dose": (5.0, 5.0)}),
    "dose 150 e/Å², 60 frames": dict(specimen={"pixel_size": (1.5, 1.5)},
                                    exposure={"dose": (150.0, 150.0), "frames": (60, 60)}),
    "200 kV, ice 1000-1400 Å": dict(specimen={"pixel_size": (1.5, 1.5), "voltage": 200.0,
                                              "ice_thickness": (1000.0, 1400.0)},
                                    exposure={"dose": (40.0, 40.0), "voltage": 200.0}),
}
"""Shifts from the physics-trained ``general``'s span. One session's kind: every micrograph of a
condition has the same detector (K3) and motion correction (bicubic); defocus, ice, drift and
particles are drawn per micrograph as in the training set (frames 20-40 unless named)."""
SESSION = {"detectors": ("k3",), "interpolations": ("bicubic",)}
SIGMAS = (0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


@dataclass
class Shot:
    """A simulated micrograph: the noisy sum and its noise-free truth."""

    noisy: np.ndarray
    truth: np.ndarray


def _psnr(image: np.ndarray, truth: np.ndarray) -> float:
    return psnr(float(np.mean((image - truth) ** 2)))


@dataclass
class Condition:
    """One shifted condition's data: the micrograph to adapt on and the held-out test set."""

    name: str
    shot: Shot
    pair: tuple[np.ndarray, np.ndarray]
    tests: list[Shot]
    noisy: float
    gaussian_oracle: float
    more: list[tuple[Shot, tuple[np.ndarray, np.ndarray]]] = dataclasses.field(
        default_factory=list)
    """Further micrographs to adapt on (``--adapt-n``), with their halves."""

    def adapt_set(self) -> list[tuple[Shot, tuple[np.ndarray, np.ndarray]]]:
        """Every micrograph adapted on, with its halves."""
        return [(self.shot, self.pair), *self.more]


def simulate_condition(name: str, kw: dict[str, Any], size: int, test_n: int,
                       test_size: int, cache: Path | None = None) -> Condition:
    """Simulate the micrograph to adapt on (whole and as two half-dose exposures) and the tests."""
    params = SimulationParams(**kw)
    shot = simulate_exposure(params, np.random.default_rng(1000), size)
    tests = [simulate_exposure(params, np.random.default_rng(2000 + i), test_size)
             for i in range(test_n)]
    rng = np.random.default_rng(3000)
    pair = (expose(shot.truth, params.dose / 2, params, rng).astype(np.float32),
            expose(shot.truth, params.dose / 2, params, rng).astype(np.float32))
    return _condition(name, Shot(shot.noisy, shot.truth), pair,
                      [Shot(t.noisy, t.truth) for t in tests])


def physics_condition(name: str, kw: dict[str, Any], size: int, test_n: int,
                      test_size: int, cache: Path | None = None,
                      adapt_n: int = 1) -> Condition:
    """Simulate physics-grade micrographs: ``adapt_n`` to adapt on (their even/odd sums the
    halves; seeds 1000, 1001, …) and the test set (seeds 2000, 2001, …).

    With ``cache``, each micrograph to adapt on and the test set are kept in files of their
    own, so a larger test set does not simulate the adapt micrographs again (nor the reverse).
    """
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_") + "_" + hashlib.sha1(
        repr((sorted(kw.items()), sorted(SESSION.items()))).encode()).hexdigest()[:8]
    from napari_cryoden.simulation.physics.dataset import PhysicsParams, simulate_physics_shot

    base = PhysicsParams()
    exposure = {"frames": (20, 40), **SESSION, **kw.get("exposure", {})}
    params = PhysicsParams(dataclasses.replace(base.specimen, **kw.get("specimen", {})),
                           dataclasses.replace(base.exposure, **exposure))
    adapt = []
    for k in range(adapt_n):
        tag = "adapt" if k == 0 else f"adapt{k}"
        file = None if cache is None else cache / f"{slug}_{tag}_{size}.npz"
        if file is not None and file.exists():
            with np.load(file) as z:
                adapt.append((Shot(z["noisy"], z["truth"]), (z["even"], z["odd"])))
            continue
        full, _ = simulate_physics_shot(params, np.random.SeedSequence(1000 + k), (size, size))
        adapt.append((Shot(full.noisy, full.truth), (full.even, full.odd)))
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(file, noisy=full.noisy, truth=full.truth, even=full.even, odd=full.odd)
    tests_file = None if cache is None else cache / f"{slug}_tests_{test_n}_{test_size}.npz"
    if tests_file is not None and tests_file.exists():
        with np.load(tests_file) as z:
            tests = [Shot(z[f"test{i}_noisy"], z[f"test{i}_truth"]) for i in range(test_n)]
    else:
        made = [simulate_physics_shot(params, np.random.SeedSequence(2000 + i),
                                      (test_size, test_size))[0] for i in range(test_n)]
        tests = [Shot(t.noisy, t.truth) for t in made]
        if tests_file is not None:
            tests_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tests_file, **{f"test{i}_{k}": getattr(t, k) for i, t in enumerate(tests)
                                    for k in ("noisy", "truth")})
    cond = _condition(name, adapt[0][0], adapt[0][1], tests)
    cond.more = adapt[1:]
    return cond


def _condition(name: str, shot: Shot, pair: tuple[np.ndarray, np.ndarray],
               tests: list[Shot]) -> Condition:
    noisy = float(np.mean([_psnr(t.noisy, t.truth) for t in tests]))
    gauss = max(float(np.mean([_psnr(gaussian_filter(t.noisy, s), t.truth) for t in tests]))
                for s in SIGMAS)
    return Condition(name, shot, pair, tests, noisy, gauss)


def conditions(physics: bool) -> tuple[dict[str, dict[str, Any]], Any]:
    """The shifted conditions and the function that simulates one."""
    return ((PHYSICS_CONDITIONS, physics_condition) if physics
            else (CONDITIONS, simulate_condition))


def score(net: torch.nn.Module, cond: Condition, norm: str, device: str = "cpu") -> float:
    """Mean PSNR of ``net`` on the condition's held-out micrographs, against their truth."""
    return float(np.mean([_psnr(denoise(net, t.noisy, normalization=norm, device=device),
                                t.truth) for t in cond.tests]))


def adapt_and_score(cond: Condition, model: str, options: AdaptOptions,
                    halves: bool, save: Path | None = None) -> dict[str, Any]:
    """Adapt ``model`` on the condition's micrograph; score start and result on the tests."""
    start, checkpoint = load_checkpoint(resolve_model(model))
    norm = checkpoint.normalization
    micrographs = ([pair for _, pair in cond.adapt_set()] if halves
                   else [(shot.noisy, None) for shot, _ in cond.adapt_set()])
    t0 = time.perf_counter()
    try:
        *_, result = adapt_steps(start, micrographs, norm, options)
    except InputError as exc:  # what the user would read: the blind spot's noise check
        return {"condition": cond.name, "refused": str(exc), "noisy": cond.noisy,
                "gaussian_oracle": cond.gaussian_oracle, "before": score(start, cond, norm)}
    seconds = time.perf_counter() - t0
    assert isinstance(result, AdaptResult)
    if save is not None:  # the adapted weights, to score them again on other tests
        from safetensors.torch import save_file

        save.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9.]+", "_", cond.name).strip("_")
        save_file({k: v.contiguous() for k, v in result.model.state_dict().items()},
                  str(save / f"{slug}_seed{options.seed}.safetensors"))
    before, after = score(start, cond, norm), score(result.model, cond, norm)
    judged = judged_patches(start, result.model, cond, norm, options) if halves else None
    return {"condition": cond.name, "mode": result.mode, "noisy": cond.noisy,
            "gaussian_oracle": cond.gaussian_oracle, "before": before, "after": after,
            "gain": after - before, "kept_start": result.kept_start, "steps": result.steps,
            "best_step": result.best_step, "seconds": seconds,
            "held_out_loss": [result.loss_before, result.loss_after],
            "sums_check": result.sums_check, "judged_patches_truth": judged}


def judged_patches(start: torch.nn.Module, tuned: torch.nn.Module, cond: Condition, norm: str,
                   options: AdaptOptions) -> dict[str, float]:
    """The true squared error of both models on the held-out patches of the adapted sums.

    Per pixel, in the sums' normalised units (what the SURE judge estimates): the patches the
    fine-tune was judged on, scored against the noise-free truth.
    """
    size = options.patch_size
    adapt = cond.adapt_set()
    totals = [np.asarray(e, np.float32) + np.asarray(o, np.float32) for _, (e, o) in adapt]
    per_mic = held_out_boxes([t.shape for t in totals], size, options.held_out, options.seed,
                             options.hold_out_micrographs)
    everything = [(k, r, c) for k, boxes in enumerate(per_mic) for r, c in boxes]
    if len(everything) > options.max_val_patches:
        keep = np.linspace(0, len(everything) - 1, options.max_val_patches).round().astype(int)
        everything = [everything[i] for i in keep]
    normalizers = [fit_normalizer(t, norm, cond.name) for t in totals]
    y = np.stack([normalizers[k].apply(totals[k][r:r + size, c:c + size])
                  for k, r, c in everything])
    truth = np.stack([normalizers[k].apply(adapt[k][0].truth[r:r + size, c:c + size]
                                           .astype(np.float32)) for k, r, c in everything])
    out = {}
    with torch.no_grad():
        for name, net in (("start", start), ("tuned", tuned)):
            net.eval()
            pred = net(torch.from_numpy(y[:, None])).float()[:, 0].numpy()
            out[name] = float(np.mean((pred - truth) ** 2))
    return {"mse_start": out["start"], "mse_tuned": out["tuned"],
            "mse_change": out["tuned"] - out["start"], "n_patches": len(everything)}


def _row(name: str, kw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.physics:
        cond = physics_condition(name, kw, args.size, args.test_n, args.test_size, args.cache,
                                 args.adapt_n)
    else:
        cond = simulate_condition(name, kw, args.size, args.test_n, args.test_size)
    options = AdaptOptions(seconds=args.seconds, device=args.device, lr=args.lr,
                           evidence=args.evidence, seed=args.seed,
                           n2v_fraction=args.n2v_fraction, val_passes=args.val_passes,
                           check_noise=not args.no_noise_check,
                           check_sums=not args.no_sums_check,
                           hold_out_micrographs=args.hold_out_micrographs, tune=args.tune)
    return {"params": kw, **adapt_and_score(cond, args.model, options, args.halves,
                                            args.save_models)}


def main() -> None:
    """Run the conditions and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None,
                   help="default: general-v1 (cartoon conditions), general (--physics)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--lr", type=float, default=AdaptOptions.lr)
    p.add_argument("--evidence", type=float, default=AdaptOptions.evidence)
    p.add_argument("--n2v-fraction", type=float, default=AdaptOptions.n2v_fraction)
    p.add_argument("--val-passes", type=int, default=AdaptOptions.val_passes)
    p.add_argument("--no-noise-check", action="store_true",
                   help="let the blind spot learn from coloured noise (to measure the harm)")
    p.add_argument("--no-sums-check", action="store_true",
                   help="keep a halves fit without checking it on the sums")
    p.add_argument("--seed", type=int, default=0, help="adapt seed: held-out patches, batches")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--test-n", type=int, default=3)
    p.add_argument("--test-size", type=int, default=384)
    p.add_argument("--halves", action="store_true")
    p.add_argument("--adapt-n", type=int, default=1,
                   help="micrographs to adapt on (--physics; each --size²)")
    p.add_argument("--tune", default="all", choices=("all", "biases"),
                   help="which parameters the fine-tune changes")
    p.add_argument("--interpolation", default="bicubic",
                   choices=("bicubic", "bilinear", "fourier"),
                   help="--physics: the session's motion-correction interpolation (fourier: "
                        "white noise on K3 sums)")
    p.add_argument("--save-models", type=Path, default=None,
                   help="keep each adapted model here (safetensors, weights only)")
    p.add_argument("--hold-out-micrographs", action="store_true",
                   help="judge on whole held-out micrographs (needs --adapt-n 2 or more)")
    p.add_argument("--physics", action="store_true", help="physics-grade conditions")
    p.add_argument("--cache", type=Path, default=None, help="keep physics conditions here")
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    SESSION["interpolations"] = (args.interpolation,)
    args.model = args.model or ("general" if args.physics else "general-v1")
    table = conditions(args.physics)[0]
    names = [n for n in table if args.only is None or any(o in n for o in args.only)]
    print("| condition | mode | noisy | Gaussian (oracle σ) | before | after | gain | kept start "
          "| steps | time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for name in names:
        r = _row(name, table[name], args)
        rows.append(r)
        if "refused" in r:
            print(f"| {name} | refused: {r['refused']} |", flush=True)
            continue
        print(f"| {name} | {r['mode']} | {r['noisy']:.2f} | {r['gaussian_oracle']:.2f} | "
              f"{r['before']:.2f} | {r['after']:.2f} | {r['gain']:+.2f} | "
              f"{'yes' if r['kept_start'] else 'no'} | {r['steps']} | {r['seconds']:.0f} s |",
              flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
