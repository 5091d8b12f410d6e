"""Topaz-Denoise against ``cryoden denoise`` on one GPU, over the same K3 micrographs.

``python benchmarks/batch_denoise_topaz.py --n 20 --size 4092x5760 --dir /scratch
--topaz-path DIR``

writes N float32 micrographs as ``batch_denoise.py`` does (the same files, so one ``--dir``
serves both) and denoises them with each program as a whole process, from a cold page cache
(every input evicted first) into an empty folder:

* **Topaz**: ``python -m topaz.commands.denoise -d GPU --arch unet -o OUT FILES`` (the module
  behind ``topaz denoise``, as in ``_topaz.py`` but on the GPU: its defaults, the shipped
  ``unet``, patches of 1024 px padded by 500, MRC output);
* **ours**: ``python -m napari_cryoden.cli denoise MODEL FILES --out OUT --device cuda``
  (``--model``, default ``general``; fp32).

Each is run twice, on one file and on all N, so that its start-up (Python, torch, CUDA, the
model) can be told apart from its rate: files/s and MB/s (input bytes) of the whole process,
and of the N-1 files beyond the first (``(T_N - T_1) / (N - 1)`` per file). It prints the ratio
ours/Topaz of both, and ``--json`` writes everything with the GPU's name.

Topaz is never imported here: it runs either in the Python of its own environment
(``--topaz-python``, as ``_topaz.py``) or in this Python with ``--topaz-path DIR`` put first on
its ``PYTHONPATH``, DIR holding the ``topaz`` package (e.g. the topaz-em 0.3.20 wheel unpacked,
which needs only torch, numpy, h5py, pillow and tqdm for this command). Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _topaz import topaz_argv  # noqa: E402
from batch_denoise import cold, dataset  # noqa: E402


def run_timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``argv`` to its exit; exits with its stderr if it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed ({done.returncode}):\n"
                         f"{done.stderr[-2000:]}")
    return seconds


def measure(name: str, make_argv: Any, files: list[Path], out: Path, env: dict[str, str],
            mb_per_file: float) -> dict[str, Any]:
    """Time ``make_argv(files, out)`` on the first file, then on all; rates of both."""
    cold(files[:1], out)
    one = run_timed(make_argv(files[:1], out), env)
    cold(files, out)
    every = run_timed(make_argv(files, out), env)
    written = sorted(p.name for p in out.iterdir() if p.suffix == ".mrc")
    if written != sorted(p.name for p in files):
        raise SystemExit(f"{name}: wrote {len(written)} of {len(files)} files to {out}")
    n = len(files)
    result = {"one_file_s": one, "all_files_s": every, "files_s": n / every,
              "mb_s": n * mb_per_file / every}
    if n > 1:
        per_file = max(every - one, 1e-9) / (n - 1)
        result.update(per_file_after_first_s=per_file, steady_files_s=1.0 / per_file,
                      steady_mb_s=mb_per_file / per_file)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--size", default="4092x5760", help="HxW (default: a K3 micrograph)")
    parser.add_argument("--gpu", type=int, default=0, help="CUDA device index for both")
    parser.add_argument("--model", default="general", help="our model (a shipped name)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/batch_denoise"))
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--topaz-python", type=Path, default=None,
                       help="the Python of an environment with topaz-em installed")
    where.add_argument("--topaz-path", type=Path, default=None,
                       help="a folder holding the topaz package, put on this Python's path")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    shape, files = dataset(args.size, args.n, args.dir)
    mb_per_file = sum(p.stat().st_size for p in files) / 1e6 / len(files)

    ours_env = dict(os.environ)
    topaz_env = dict(os.environ)
    if args.topaz_path is not None:
        python = Path(sys.executable)
        topaz_env["PYTHONPATH"] = os.pathsep.join(
            [str(args.topaz_path.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])])
    else:
        python = args.topaz_python or Path("/work/topaz-venv/bin/python")
    check = subprocess.run([str(python), "-c", "import topaz, topaz.denoise; "
                            "print(topaz.__version__)"], capture_output=True, text=True,
                           env=topaz_env)
    if check.returncode:
        raise SystemExit(f"{python} cannot import topaz.denoise:\n{check.stderr[-800:]}")
    version = check.stdout.strip()

    import torch

    gpu = torch.cuda.get_device_name(args.gpu)
    report: dict[str, Any] = {"n": args.n, "shape": shape, "mb_per_file": mb_per_file,
                              "gpu": gpu, "torch": torch.__version__, "topaz": version,
                              "model": args.model, "precision": "fp32"}

    def topaz(inputs: list[Path], out: Path) -> list[str]:
        line = topaz_argv(python, inputs, out)
        line[line.index("-d") + 1] = str(args.gpu)  # _topaz.py's command line, on the GPU
        return line

    def ours(inputs: list[Path], out: Path) -> list[str]:
        return [sys.executable, "-m", "napari_cryoden.cli", "denoise", args.model,
                *map(str, inputs), "--out", str(out), "--device", f"cuda:{args.gpu}"]

    report["topaz_argv"] = topaz(files[:1], args.dir / "topaz")[1:5] + ["..."]
    report["ours_argv"] = ours(files[:1], args.dir / "ours")[1:6] + ["..."]
    report["topaz_unet"] = measure("topaz", topaz, files, args.dir / "topaz", topaz_env,
                                   mb_per_file)
    report["ours"] = measure("ours", ours, files, args.dir / "ours", ours_env, mb_per_file)
    report["ratio_whole_process"] = report["ours"]["files_s"] / report["topaz_unet"]["files_s"]
    if args.n > 1:
        report["ratio_steady"] = (report["ours"]["steady_files_s"]
                                  / report["topaz_unet"]["steady_files_s"])

    print(f"{args.n} micrographs of {shape[0]}x{shape[1]} ({mb_per_file:.0f} MB each) on {gpu}, "
          f"whole processes from a cold page cache")
    for label, key in ((f"Topaz {version} unet", "topaz_unet"), (f"ours ({args.model})", "ours")):
        r = report[key]
        print(f"  {label}: 1 file {r['one_file_s']:.1f} s, {args.n} files {r['all_files_s']:.1f} s"
              f" = {r['files_s']:.2f} files/s ({r['mb_s']:.0f} MB/s)"
              + (f"; after the first {r['steady_files_s']:.2f} files/s ({r['steady_mb_s']:.0f}"
                 " MB/s)" if "steady_files_s" in r else ""))
    print(f"  ours / Topaz: {report['ratio_whole_process']:.2f}x whole process"
          + (f", {report['ratio_steady']:.2f}x after the first file" if "ratio_steady" in report
             else ""))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
