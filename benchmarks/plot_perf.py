"""Throughput against batch size, from the JSON files of bench_step.py and bench_kernels*.py.

Usage::

    python benchmarks/plot_perf.py --step step.json [--kernels kernels.json]
                                   [--kernels-train kernels_train.json] --out docs/images/perf.png

Left: the training step alone (patches of 1024² per second); right: the forward pass (Gpx/s).
Each curve is one variant of the same run; the plain fp32 loop is drawn black.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _series(rows: list[dict], key: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if key in row:
            out[row["variant"]].append((row["batch"], row[key]))
    return {name: sorted(points) for name, points in out.items()}


def _draw(ax, series: dict[str, list[tuple[int, float]]], title: str, unit: str) -> None:
    for name, points in series.items():
        xs, ys = zip(*points, strict=True)
        plain = "plain" in name
        ax.plot(xs, ys, "o-", label=name, color="black" if plain else None,
                linewidth=2.5 if plain else 1.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (patches of 1024²)")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _best(rows: list[dict], prefixes: tuple[str, ...], key: str) -> list[dict]:
    """Per batch size, the fastest row whose variant starts with one of ``prefixes``."""
    best: dict[int, dict] = {}
    for row in rows:
        if row["variant"].startswith(prefixes) and key in row and (
                row["batch"] not in best or row[key] > best[row["batch"]][key]):
            best[row["batch"]] = row
    return [{**row, "variant": "Triton fused (best tile)"} for row in best.values()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", type=Path, required=True)
    parser.add_argument("--kernels", type=Path)
    parser.add_argument("--kernels-train", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    step = json.loads(args.step.read_text())
    train_rows = [r for r in step["rows"] if r["kind"] == "train"]
    infer_rows = [r for r in step["rows"] if r["kind"] == "infer"]
    if args.kernels_train:
        extra = json.loads(args.kernels_train.read_text())
        train_rows += _best(extra["rows"] if isinstance(extra, dict) else extra,
                            ("bwd", "fused"), "patches_per_s")
    if args.kernels:
        extra = json.loads(args.kernels.read_text())
        infer_rows += _best(extra["rows"] if isinstance(extra, dict) else extra, ("fused",),
                            "gpx_per_s")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    _draw(left, _series(train_rows, "patches_per_s"), "training step alone", "patches/s")
    _draw(right, _series(infer_rows, "gpx_per_s"), "forward pass", "Gpx/s")
    fig.suptitle(f"seed net on {step.get('device', '?')}, torch {step.get('torch', '?')}")
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
