"""`streid export`: write a checkpoint's inference encoder as ONNX and/or TorchScript."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import StreidError
from ._args import add_checkpoint_arg, command_parser

EXPORTERS = ("dynamo", "torchscript")  # mirrors evaluation.export.EXPORTERS without importing torch
# Largest error allowed between the ONNX model and PyTorch, relative to the largest descriptor
# value: float32 kernels differ by ~1e-6 relative; anything near 1e-3 is a broken graph.
RELATIVE_TOLERANCE = 1e-4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "export", help="export a checkpoint's re-ID encoder to ONNX (dynamic batch) or TorchScript",
        description="Export the inference encoder of a streid checkpoint. The exported model takes a float32 "
                    "batch (N, 3, H, W) at the checkpoint's input size, RGB, ImageNet-normalised, and returns "
                    "the (N, D) descriptors. The ONNX file is checked against PyTorch with onnxruntime.",
    )
    add_checkpoint_arg(parser, "a streid checkpoint (checkpoint.pth.tar / model_best.pth.tar)", required=True)
    parser.add_argument("--onnx", metavar="OUT.onnx", help="ONNX file to write")
    parser.add_argument("--torchscript", metavar="OUT.pt", help="TorchScript file to write (load with torch.jit.load)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="dynamo",
                        help="ONNX exporter: dynamo (torch.export, needs onnxscript) or torchscript "
                             "(the older tracer) (default dynamo)")
    parser.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's choice)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime-versus-PyTorch comparison")
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    import torch

    from ..atomic import check_not_an_input, check_output_file
    from ..evaluation.export import check_opset, export_onnx, export_torchscript, max_abs_difference, onnx_session
    from ..models.loading import load_encoder

    if not args.onnx and not args.torchscript:
        raise StreidError("nothing to export: pass --onnx OUT.onnx and/or --torchscript OUT.pt")
    for flag, out in (("--onnx", args.onnx), ("--torchscript", args.torchscript)):
        if out:
            check_output_file(out, flag)
            check_not_an_input(out, flag, {"--checkpoint": args.checkpoint})
    if args.onnx and args.torchscript:
        check_not_an_input(args.torchscript, "--torchscript", {"--onnx": args.onnx})
    if args.onnx:
        check_opset(args.opset, args.exporter)  # before the checkpoint is read
    model, (height, width) = load_encoder(Path(args.checkpoint), "cpu")
    if args.onnx:
        path = export_onnx(model, args.onnx, height, width, exporter=args.exporter, opset=args.opset)
        print(f"ONNX ({args.exporter} exporter) written to {path}: input images (batch, 3, {height}, {width})")
        if not args.no_check:
            images = torch.randn(3, 3, height, width, generator=torch.Generator().manual_seed(1))
            error, scale = max_abs_difference(model, onnx_session(path), images)
            print(f"onnxruntime vs PyTorch: max abs difference {error:.2e} (descriptor values up to {scale:.3g})")
            if error > RELATIVE_TOLERANCE * max(scale, 1.0):
                path.unlink()  # a wrong model must not be left where a deployment would pick it up
                raise StreidError(f"{path}: onnxruntime output differs from PyTorch by {error:.2e}; the export is "
                                  f"wrong, try --exporter {'torchscript' if args.exporter == 'dynamo' else 'dynamo'}")
    if args.torchscript:
        path = export_torchscript(model, args.torchscript, height, width)
        print(f"TorchScript written to {path}")
    return 0
