"""Export the inference encoder for deployment: ONNX (dynamic batch) and TorchScript.

What is exported is the encoder's eval-mode forward (docs/original-system.md §2.6): a float32 batch
(N, 3, H, W), RGB, resized to the training size and ImageNet-normalised, goes in; the (N, D)
descriptor comes out. Nothing of the generator or discriminators is needed. The ONNX file
carries the input size and the normalisation in its metadata, so a consumer can prepare
images without streid.

Exporters. torch 2.14 offers two ONNX exporters: "dynamo" (torch.export + onnxscript, the
default and the maintained one) and "torchscript" (the older tracer, deprecated by PyTorch but
needing no onnxscript). Both give graphs that onnxruntime runs within ~1e-5 of eager PyTorch
on ResNet encoders (`tests/test_export.py` checks both); "dynamo" is the default.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_file
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import StreidError

INPUT_NAME = "images"
OUTPUT_NAME = "features"
EXPORTERS = ("dynamo", "torchscript")
# The legacy exporter needs an explicit opset; 17 is the newest every onnxruntime >= 1.14 runs.
TORCHSCRIPT_OPSET = 17
MIN_OPSET = 7


def max_opset(exporter: str) -> int:
    """The newest opset `exporter` can write here: the tracer's own limit, or for dynamo the
    newest the installed onnx knows (dynamo converts to it, and silently keeps its own when it
    cannot)."""
    if exporter == "torchscript":
        from torch.onnx import _constants

        return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20))
    onnx = _require("onnx", "ONNX export")
    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int | None, exporter: str) -> None:
    """Refuse an --opset the exporter cannot write, before the model is loaded."""
    if opset is None:
        return
    if opset < MIN_OPSET:
        raise StreidError(f"--opset {opset}: ONNX opsets start at {MIN_OPSET}; leave it out for the exporter's choice")
    newest = max_opset(exporter)
    if opset > newest:
        raise StreidError(f"--opset {opset}: the {exporter} exporter writes opsets up to {newest}; pass {newest} "
                          "or lower, or leave it out for the exporter's choice")


def _require(module: str, purpose: str):
    try:
        return __import__(module)
    except ImportError:
        raise StreidError(f"{purpose} needs the package {module!r}, which is not installed; "
                          f"pip install {module} (or streid[dev])") from None


def _cpu_copy(model: nn.Module) -> nn.Module:
    """A float32 eval-mode copy on the CPU, so the caller's model keeps its device and mode."""
    return copy.deepcopy(model).cpu().float().eval()


def _example(height: int, width: int, batch: int = 2) -> torch.Tensor:
    # Batch 2, not 1: a size-1 example lets exporters specialise the batch dimension away.
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence these loggers: a failed opset conversion logs a whole traceback, and export_onnx
    reports the opset it got in one line instead."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _onnx_bytes(model: nn.Module, example: torch.Tensor, exporter: str, opset: int | None) -> bytes:
    if exporter == "dynamo":
        _require("onnxscript", "the dynamo ONNX exporter (use --exporter torchscript to do without it)")
        with _quiet_loggers("onnxscript.version_converter", "torch.onnx._internal.exporter._compat"):
            program = torch.onnx.export(
                model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, opset_version=opset, verbose=False,
            )
        return program.model_proto.SerializeToString()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The deprecation notice is the reason "dynamo" is the default; the user chose this one.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset or TORCHSCRIPT_OPSET,
        )
    return buffer.getvalue()


def export_onnx(model: nn.Module, path: str | os.PathLike, height: int = 256, width: int = 128,
                exporter: str = "dynamo", opset: int | None = None) -> Path:
    """Write `model`'s eval-mode forward as an ONNX file with a dynamic batch dimension.

    Input "images" (batch, 3, height, width) float32, output "features" (batch, D). The file
    is checked with `onnx.checker` and written atomically. `opset=None` lets the exporter pick.
    """
    if exporter not in EXPORTERS:
        raise StreidError(f"unknown ONNX exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    check_opset(opset, exporter)
    onnx = _require("onnx", "ONNX export")
    cpu_model = _cpu_copy(model)
    example = _example(height, width)
    with torch.no_grad():
        feature_dim = int(cpu_model(example).shape[1])
    try:
        proto = onnx.load_from_string(_onnx_bytes(cpu_model, example, exporter, opset))
    except StreidError:
        raise
    except Exception as exc:  # exporter failures come in many types; all mean "this exporter cannot"
        other = [e for e in EXPORTERS if e != exporter][0]
        raise StreidError(f"the {exporter} ONNX exporter failed ({type(exc).__name__}: "
                          f"{(str(exc).splitlines() or [''])[0][:160]}); try --exporter {other}") from exc
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and written != opset:
        # dynamo falls back to its own opset when it cannot convert, with only a logged warning
        raise StreidError(f"--opset {opset}: the {exporter} exporter wrote opset {written} instead; pass "
                          f"--opset {written}, or leave it out for the exporter's choice")
    metadata = {
        "producer": "streid", "input": INPUT_NAME, "output": OUTPUT_NAME,
        "height": str(height), "width": str(width), "feature_dim": str(feature_dim),
        "preprocessing": "RGB, resize to height x width (bilinear), x / 255, (x - mean) / std",
        "mean": ",".join(map(str, IMAGENET_MEAN)), "std": ",".join(map(str, IMAGENET_STD)),
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    with atomic_file(path, "wb") as handle:
        handle.write(proto.SerializeToString())
    return Path(path)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise StreidError(f"{path}: ONNX file not found; export one with `streid export --onnx`")


def _unreadable(path: Path, exc: Exception) -> StreidError:
    return StreidError(f"{path}: not a readable ONNX file ({type(exc).__name__}); export it again")


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata streid stored in an exported ONNX file (input size, normalisation, ...)."""
    onnx = _require("onnx", "reading ONNX files")
    path = Path(path)
    _check_file(path)
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf decode errors: a damaged or non-ONNX file
        raise _unreadable(path, exc) from exc
    return {p.key: p.value for p in proto.metadata_props}


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session for an exported file. `threads` caps intra-op threads
    (None: onnxruntime's default, one per core)."""
    ort = _require("onnxruntime", "running ONNX models")
    path = Path(path)
    _check_file(path)
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's InvalidProtobuf / Fail: a damaged or non-ONNX file
        raise _unreadable(path, exc) from exc


def onnx_features(session, images: np.ndarray | torch.Tensor, batch_size: int | None = None) -> np.ndarray:
    """Descriptors of a preprocessed float32 batch (N, 3, H, W) from an onnxruntime session,
    `batch_size` images per run (None: all at once)."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    array = np.ascontiguousarray(array, dtype=np.float32)
    step = batch_size or max(len(array), 1)
    name = session.get_inputs()[0].name
    outputs = [session.run(None, {name: array[i:i + step]})[0] for i in range(0, len(array), step)]
    return np.concatenate(outputs)


def export_torchscript(model: nn.Module, path: str | os.PathLike, height: int = 256, width: int = 128) -> Path:
    """Write `model`'s eval-mode forward as a traced TorchScript file (any batch size), atomically.

    Load it with `torch.jit.load(path)`; it needs PyTorch but not streid.
    """
    cpu_model = _cpu_copy(model)
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export; it still works and is what was asked for.
        warnings.simplefilter("ignore", FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(cpu_model, _example(height, width))
        with atomic_file(path, "wb") as handle:
            torch.jit.save(traced, handle)
    return Path(path)


def max_abs_difference(model: nn.Module, session, images: torch.Tensor) -> tuple[float, float]:
    """(max |onnx - torch|, max |torch|) of the descriptors of `images`: the export's error and
    the scale it should be judged against."""
    with torch.no_grad():
        reference = _cpu_copy(model)(images.float().cpu()).numpy()
    exported = onnx_features(session, images)
    return float(np.abs(exported - reference).max()), float(np.abs(reference).max())
