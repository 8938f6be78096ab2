"""A real `streid baseline` process killed with SIGKILL at a random moment leaves only sound
checkpoints, and resuming it ends with the weights of an uninterrupted run."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from _make_train_run import cli_args, single_thread, tiny_config, tiny_openreid

from streid_core.training.baseline import train_baseline
from streid_core.models.loading import load_checkpoint
from streid_core.training.checkpoint import BEST_NAME, CHECKPOINT_NAME

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)
EPOCHS = 5


def _streid(args, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, "-m", "streid_core", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = tiny_openreid(tmp_path / "data")
    logs = tmp_path / "killed"
    config = tiny_config(data, logs, epochs=EPOCHS)
    checkpoint = logs / CHECKPOINT_NAME

    seed = random.SystemRandom().randrange(2**32)
    delay = random.Random(seed).uniform(0.0, 2.0)
    proc = _streid(cli_args(config))
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert checkpoint.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint within 120 s"
    time.sleep(delay)  # somewhere in a later epoch, an evaluation, or a checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()

    # whatever was interrupted, the checkpoints on disk are complete
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert 1 <= killed_at <= EPOCHS, f"seed {seed}"
    if (logs / BEST_NAME).exists():
        load_checkpoint(logs / BEST_NAME)

    resumed = _streid(cli_args(config) + ["--resume", str(checkpoint)])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, f"seed {seed}: {err}"
    assert not list(logs.glob(".*.tmp")), "a temporary file from the killed write was left behind"

    straight = tmp_path / "straight"
    train_baseline(tiny_config(data, straight, epochs=EPOCHS))
    a, b = load_checkpoint(straight / CHECKPOINT_NAME), load_checkpoint(checkpoint)
    assert b["epoch"] == EPOCHS
    for key in a["encoder"]:
        assert torch.equal(a["encoder"][key], b["encoder"][key]), f"{key} differs (kill seed {seed}, epoch {killed_at})"
    # the selection survives the kill too: same evaluations, same best epoch, same test numbers
    straight_results = json.loads((straight / "results.json").read_text())
    resumed_results = json.loads((logs / "results.json").read_text())
    for key in ("history", "selected_epoch", "test"):
        assert resumed_results[key] == straight_results[key], f"{key} differs (kill seed {seed}, epoch {killed_at})"
    assert load_checkpoint(logs / BEST_NAME)["epoch"] == resumed_results["selected_epoch"]
