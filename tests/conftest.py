"""Shared pytest setup: tests/ on sys.path for helper modules, small thread pools, CPU only."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

# Network weights a test writes under its own tmp_path are deleted when it ends: pytest keeps the
# last three runs' folders, and their checkpoints (four networks and their optimisers per ST-ReIDNet
# run) made a full run leave about 15 GB. Everything else a failed test wrote stays for reading.
WEIGHT_FILES = (".pth.tar", ".pth", ".pt")


@pytest.fixture(autouse=True)
def _delete_weights_after_the_test(request):
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if folder is not None and folder.is_dir():
        for path in folder.rglob("*"):
            if path.name.endswith(WEIGHT_FILES) and path.is_file():
                path.unlink()
