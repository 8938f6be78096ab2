"""benchmarks/train_speed.py --against REV: a revision that is not a commit, or whose own benchmark
cannot time ST-ReIDNet, is one line and exit 2 before anything is written."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "train_speed.py"


def _needs_commit(rev: str) -> None:
    """Skip where the checkout has no such commit (a shallow clone, an exported tree)."""
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{rev}^{{commit}}"], capture_output=True)
    if found.returncode:
        pytest.skip(f"this checkout has no commit {rev} (shallow clone or no git history)")


def _train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_an_unknown_revision_is_one_line_and_exit_2_before_any_timing(tmp_path, capsys):
    out = tmp_path / "speed.json"
    with pytest.raises(SystemExit) as stop:
        _train_speed().main(["--task", "streidnet", "--against", "no-such-revision", "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--against no-such-revision: not a commit" in err
    assert not out.exists()


def test_a_known_revision_resolves_to_its_commit():
    _needs_commit("HEAD")
    commit = _train_speed().resolve_revision("HEAD")
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)


def test_a_revision_whose_benchmark_cannot_time_streidnet_is_one_line_and_exit_2(tmp_path, capsys):
    # 0de0006 is the commit that added train_speed.py, before it had --task streidnet
    _needs_commit("0de0006")
    out = tmp_path / "speed.json"
    with pytest.raises(SystemExit) as stop:
        _train_speed().main(["--task", "streidnet", "--archs", "resnet18", "--iterations", "1", "--workers", "0",
                             "--against", "0de0006", "--out", str(out)])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("--against 0de0006") and "that revision's benchmark failed" in last
    assert not out.exists()
