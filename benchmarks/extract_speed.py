"""Feature-extraction speed: the JPEG-to-descriptor pipeline against the model alone, bf16's
effect on rankings, and onnxruntime against PyTorch.

The reference run is the model alone: the encoder on batches already decoded, resized and
normalised in memory. The pipeline is `extract_features` on the same images read from JPEG
files (decode, resize, normalise, batch, forward), loading in the main process as `streid
evaluate` does by default (on two cores a loader process only takes CPU from the model's two
threads). Goal: pipeline >= 90 % of the model alone, i.e. loading costs at most a tenth of
the time. The input is channels_last and the weights are converted to channels_last once
(`--plain-weights` keeps them NCHW); precisions fp32 and bf16 autocast.

Timing on a shared machine: each batch is run both ways back to back (alternating which goes
first) and the best of `--repeats` rounds is kept per batch, so load from other processes
hits both sides alike; the ratio is reported over the whole run and as the median of the
per-batch ratios. The same pairing compares onnxruntime with PyTorch fp32.

Images: the test split of a small SynthDance set generated on the fly (256x128 JPEG crops,
DanceReID's size, so no resize), query = gallery as in DanceReID.

bf16's effect: with random weights the descriptors still rank these images (colour and
texture survive random convolutions), so the change bf16 causes in mAP/R1 under the dataset's
protocol is measurable, but it says how bf16 perturbs *these* features, not a trained model's;
the per-image cosine between fp32 and bf16 descriptors and the share of queries whose rank-1
image is unchanged are reported with it. `--checkpoint` adds a row for a trained encoder, run
at its own input size (a 128x64 model also exercises the pipeline's resize).

Run: .venv/bin/python benchmarks/extract_speed.py [--archs resnet50,resnet18] [--repeats 3]
Writes reports/bench/extract_speed.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from streid_core.atomic import write_json
from streid_core.data import load_dataset
from streid_core.data.preprocessor import ReidImageDataset
from streid_core.data.synth import SynthConfig, generate
from streid_core.evaluation.distance import PairwiseDistance, evaluate_features
from streid_core.evaluation.export import export_onnx, onnx_features, onnx_session
from streid_core.evaluation.features import extract_features
from streid_core.models.reid import ReIDEncoder
from streid_core.models.loading import load_encoder
from streid_core.viz.ranked import first_match_ranks

HEIGHT, WIDTH = 256, 128  # the random-init encoders' input, and the generated crops' size
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def synth_test_split(folder: Path):
    """The query/gallery records of a small generated SynthDance set, and its protocol."""
    generate(folder, SynthConfig(seed=0, ids=16, videos=4, frames=24, height=HEIGHT, width=WIDTH))
    dataset = load_dataset(folder)
    return dataset.query, dataset.gallery, dataset.protocol


def preload(records, size: tuple[int, int]) -> torch.Tensor:
    """Every image decoded, resized and normalised as the pipeline does it, held in memory."""
    dataset = ReidImageDataset(records, {}, "test", height=size[0], width=size[1])
    return torch.stack([dataset[i]["image"] for i in range(len(records))])


def forward(model, images: torch.Tensor, dtype) -> torch.Tensor:
    """The model alone, in the same context as `extract_features` (inference mode, autocast,
    channels_last input)."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        return model(images.contiguous(memory_format=torch.channels_last)).float()


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def paired_times(first: Callable[[slice], object], second: Callable[[slice], object], count: int,
                 batch_size: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-of-`rounds` seconds per batch of two ways of processing the same batch, run back to
    back (which goes first alternates), so load from other processes hits both alike."""
    batches = [slice(i, min(i + batch_size, count)) for i in range(0, count, batch_size)]
    first(batches[0]), second(batches[0])  # warm-up: kernels, allocator, file cache
    best = np.full((2, len(batches)), np.inf)
    for r in range(rounds):
        for k, batch in enumerate(batches):
            order = (0, 1) if (r + k) % 2 == 0 else (1, 0)
            for which in order:
                work = first if which == 0 else second
                best[which, k] = min(best[which, k], _seconds(lambda: work(batch)))
    return best[0], best[1]


def compare(first_times: np.ndarray, second_times: np.ndarray, count: int) -> dict:
    """Rates of both and the second's rate over the first's (whole run and median batch)."""
    return {"first_img_s": count / first_times.sum(), "second_img_s": count / second_times.sum(),
            "ratio": first_times.sum() / second_times.sum(),
            "median_batch_ratio": float(np.median(first_times / second_times))}


def loading_only(records, batch_size: int, size: tuple[int, int]) -> float:
    """Images per second of the pipeline's loading half alone (decode, resize, normalise, batch;
    no model), in the main process: what the pipeline adds to the model's time."""
    from torch.utils.data import DataLoader

    loader = DataLoader(ReidImageDataset(records, {}, "test", height=size[0], width=size[1]), batch_size=batch_size)
    start = time.perf_counter()
    for batch in loader:
        batch["image"].contiguous(memory_format=torch.channels_last)
    return len(records) / (time.perf_counter() - start)


def rank1_indices(feats: np.ndarray, pids, camids) -> np.ndarray:
    """Each query's nearest non-junk gallery index (query set = gallery set)."""
    d = PairwiseDistance(feats, feats)(0, len(feats))
    d[(pids[:, None] == pids[None, :]) & (camids[:, None] == camids[None, :])] = np.inf
    return np.argmin(d, axis=1)


def bf16_effect(fp32: np.ndarray, bf16: np.ndarray, query, protocol: str) -> dict:
    pids = np.array([r.pid for r in query])
    cams = np.array([r.camid for r in query])
    cosine = np.sum(fp32 * bf16, axis=1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    results = {name: evaluate_features(f, f, pids, pids, cams, cams, protocol=protocol)
               for name, f in (("fp32", fp32), ("bf16", bf16))}
    valid = first_match_ranks(PairwiseDistance(fp32, fp32), pids, pids, cams, cams) > 0
    same_top = rank1_indices(fp32, pids, cams) == rank1_indices(bf16, pids, cams)
    return {
        "protocol": protocol, "images": len(query),
        "cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min()),
        "mAP_fp32": results["fp32"].mAP, "mAP_bf16": results["bf16"].mAP,
        "mAP_change_points": 100 * (results["bf16"].mAP - results["fp32"].mAP),
        "R1_fp32": results["fp32"].rank1, "R1_bf16": results["bf16"].rank1,
        "rank1_image_unchanged": float(same_top[valid].mean()),
    }


def measure_arch(arch: str, args, query, protocol: str, folder: Path) -> dict:
    """Speeds, bf16 effect and ONNX comparison of one encoder on the query images, at its input
    size (a checkpoint's training size; else 256x128)."""
    torch.manual_seed(0)
    if arch == "checkpoint":
        model, size = load_encoder(args.checkpoint)
    else:
        model, size = ReIDEncoder(arch).eval(), (HEIGHT, WIDTH)
    if not args.plain_weights:
        model = model.to(memory_format=torch.channels_last)
    images = preload(query, size)
    out: dict = {"arch": arch, "input_size": list(size),
                 "loading_only_img_s": max(loading_only(query, args.batch_size, size) for _ in range(args.repeats)),
                 "speed": {}}
    feats: dict[str, np.ndarray] = {}
    n, h, w = len(query), *size
    for name, dtype in PRECISIONS.items():
        alone, piped = paired_times(
            lambda batch: forward(model, images[batch], dtype),
            lambda batch: extract_features(model, query[batch], args.batch_size, dtype=dtype, height=h, width=w),
            n, args.batch_size, args.repeats)
        result = compare(alone, piped, n)
        out["speed"][name] = {"model_alone_img_s": result["first_img_s"], "pipeline_img_s": result["second_img_s"],
                              "pipeline_over_model": result["ratio"],
                              "median_batch_ratio": result["median_batch_ratio"]}
        feats[name] = extract_features(model, query, args.batch_size, dtype=dtype, height=h, width=w)[0].numpy()
    out["bf16_effect"] = bf16_effect(feats["fp32"], feats["bf16"], query, protocol)

    session = onnx_session(export_onnx(model, folder / f"{arch}.onnx", h, w), threads=torch.get_num_threads())
    torch_times, ort_times = paired_times(lambda batch: forward(model, images[batch], None),
                                          lambda batch: onnx_features(session, images[batch]),
                                          n, args.batch_size, args.repeats)
    result = compare(torch_times, ort_times, n)
    reference = forward(model, images[: args.batch_size], None).numpy()
    diff = np.abs(onnx_features(session, images[: args.batch_size]) - reference).max()
    out["onnx"] = {
        "torch_fp32_img_s": result["first_img_s"], "onnxruntime_img_s": result["second_img_s"],
        "onnxruntime_over_torch": result["ratio"],
        "max_abs_difference": float(diff), "max_abs_value": float(np.abs(reference).max()),
    }
    return out


def print_tables(results: list[dict]) -> None:
    print("\nimages/s; ratio = pipeline / model alone (goal >= 0.90), over the run and its median batch; "
          "loading = decode + resize + normalise + batch alone (no model)")
    print(f"{'arch':<11}{'input':<8}{'loading':>8}{'precision':>10}{'model alone':>12}{'pipeline':>9}{'ratio':>7}"
          f"{'median':>8}")
    for res in results:
        size = "x".join(map(str, res["input_size"]))
        for name, s in res["speed"].items():
            print(f"{res['arch']:<11}{size:<8}{res['loading_only_img_s']:>8.0f}{name:>10}{s['model_alone_img_s']:>12.1f}"
                  f"{s['pipeline_img_s']:>9.1f}{s['pipeline_over_model']:>7.2f}{s['median_batch_ratio']:>8.2f}")
    print(f"\n{'arch':<11}{'torch fp32':>11}{'onnxruntime':>12}{'ratio':>7}{'max|diff|':>11}{'max|feat|':>11}")
    for res in results:
        o = res["onnx"]
        print(f"{res['arch']:<11}{o['torch_fp32_img_s']:>11.1f}{o['onnxruntime_img_s']:>12.1f}"
              f"{o['onnxruntime_over_torch']:>7.2f}{o['max_abs_difference']:>11.2e}{o['max_abs_value']:>11.3g}")
    print(f"\n{'arch':<11}{'cos mean':>9}{'cos min':>9}{'mAP fp32':>9}{'mAP bf16':>9}{'change':>8}{'R1 fp32':>8}"
          f"{'R1 bf16':>8}{'same top1':>10}")
    for res in results:
        b = res["bf16_effect"]
        print(f"{res['arch']:<11}{b['cosine_mean']:>9.5f}{b['cosine_min']:>9.5f}{100 * b['mAP_fp32']:>9.2f}"
              f"{100 * b['mAP_bf16']:>9.2f}{b['mAP_change_points']:>+8.2f}{100 * b['R1_fp32']:>8.1f}"
              f"{100 * b['R1_bf16']:>8.1f}{b['rank1_image_unchanged']:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="resnet50,resnet18", help="comma-separated encoder archs")
    parser.add_argument("--checkpoint", help="also measure this trained checkpoint's encoder at its own input size "
                                             "(row 'checkpoint')")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plain-weights", action="store_true", help="keep the weights NCHW (only the input is channels_last)")
    parser.add_argument("--out", default="reports/bench/extract_speed.json")
    args = parser.parse_args()
    archs = [a for a in args.archs.split(",") if a] + (["checkpoint"] if args.checkpoint else [])

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        query, gallery, protocol = synth_test_split(Path(tmp) / "synth")
        assert query == gallery, "SynthDance's protocol uses query set = gallery set"
        print(f"{len(query)} SynthDance test images {HEIGHT}x{WIDTH}, protocol {protocol}, torch threads "
              f"{torch.get_num_threads()}, batch {args.batch_size}")
        results = []
        for arch in archs:
            results.append(measure_arch(arch, args, query, protocol, Path(tmp)))
            print(f"{arch} done")
    print_tables(results)

    import onnxruntime

    write_json(args.out, {
        "benchmark": "extract_speed",
        "machine": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    # other processes share this machine: its 1-minute load at start and end
                    "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
                    "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "settings": {"images": len(query), "image_files": f"{HEIGHT}x{WIDTH} JPEG", "batch_size": args.batch_size,
                     "repeats": args.repeats, "loader_workers": 0, "weights_channels_last": not args.plain_weights,
                     "checkpoint": args.checkpoint,
                     "weights": "random init (seed 0); row 'checkpoint': the trained --checkpoint"},
        "goal": "pipeline_over_model >= 0.90",
        "results": results,
    })
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
