"""Fetch and build the peer evaluators the benchmark compares against, in a cache folder.

Nothing goes into the project's virtualenv: packages are downloaded with pip into
`$STREID_BENCH_CACHE` (default ~/.cache/streid-bench) and the Cython extension is compiled
there with Cython (installed with `pip install --target`) and the system C compiler.
Each loader returns (evaluate function, None) or (None, reason it is unavailable).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

CACHE = Path(os.environ.get("STREID_BENCH_CACHE", Path.home() / ".cache" / "streid-bench"))
FASTREID = "fastreid==1.4.0"
TORCHREID = "torchreid==0.2.5"
PYX_IN_WHEEL = "fastreid/evaluation/rank_cylib/rank_cy.pyx"

# A peer evaluator: (distmat, q_pids, g_pids, q_camids, g_camids, max_rank) -> (cmc, mAP, mINP | None)
Evaluator = Callable[..., tuple]


def _run(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {tail[0]}")


def _pip(*args: str) -> None:
    _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args])


def _build_fastreid_cython(build: Path) -> Path:
    """Download the fastreid wheel, take rank_cy.pyx, cythonize and compile it with gcc."""
    ext = sysconfig.get_config_var("EXT_SUFFIX")
    built = build / f"rank_cy{ext}"
    if built.exists():
        return built
    wheels = CACHE / "downloads"
    if not list(wheels.glob("fastreid-1.4.0*")):
        _pip("download", "--no-deps", FASTREID, "-d", str(wheels))
    wheel = next(wheels.glob("fastreid-1.4.0*"))
    build.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        (build / "rank_cy.pyx").write_bytes(archive.read(PYX_IN_WHEEL))
    cython_dir = CACHE / "cython"
    if not (cython_dir / "Cython").exists():
        _pip("install", "--target", str(cython_dir), "Cython>=3")
    env = dict(os.environ, PYTHONPATH=str(cython_dir))
    _run([sys.executable, "-m", "cython", "rank_cy.pyx", "-o", "rank_cy.c"], env=env, cwd=build)
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler (gcc/cc) on PATH")
    _run([compiler, "-O3", "-shared", "-fPIC", "-w",
          f"-I{sysconfig.get_paths()['include']}", f"-I{np.get_include()}",
          "rank_cy.c", "-o", built.name], cwd=build)
    return built


def fastreid_cython() -> tuple[Evaluator | None, str | None]:
    """fast-reid 1.4.0's Cython `evaluate_cy`, compiled in the cache."""
    try:
        path = _build_fastreid_cython(CACHE / "fastreid_rank_cy")
        spec = importlib.util.spec_from_file_location("rank_cy", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # any failure means "peer unavailable", reported, not fatal
        return None, f"fast-reid Cython unavailable: {exc}"

    def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
        cmc, all_ap, all_inp = module.evaluate_cy(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, False)
        return np.asarray(cmc), float(np.mean(all_ap)), float(np.mean(all_inp))

    return evaluate, None


def torchreid_python() -> tuple[Evaluator | None, str | None]:
    """torchreid 0.2.5 (PyPI repack): its pure-Python evaluator (the package ships no Cython)."""
    target = CACHE / "torchreid"
    try:
        if not (target / "torchreid").exists():
            _pip("install", "--no-deps", "--target", str(target), TORCHREID, "gdown", "imageio")
        if str(target) not in sys.path:
            sys.path.append(str(target))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "Cython evaluation is unavailable" warning
            from torchreid.reid.metrics import rank
    except Exception as exc:
        return None, f"torchreid unavailable: {exc}"

    def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
        cmc, m_ap = rank.evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank,
                                       use_cython=False)
        return np.asarray(cmc), float(m_ap), None

    return evaluate, None
