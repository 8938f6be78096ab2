"""Shared pytest setup: tests/ on sys.path for helper modules, small thread pools, CPU only."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
