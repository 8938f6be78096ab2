"""The flags the pose-transfer benchmarks share: which E, which dataset, which canvas."""
from __future__ import annotations

import argparse


def add_encoder_and_data_args(p: argparse.ArgumentParser, encoder_help: str) -> None:
    p.add_argument("--encoder", required=True, help=encoder_help)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--dataset", default="synthdance")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
