"""benchmarks/train_speed.py --against REV: a revision that is not a commit is refused up front."""
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


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
    commit = _train_speed().resolve_revision("HEAD")
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
