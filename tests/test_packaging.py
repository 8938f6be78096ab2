"""The install a new user relies on: one dependency list in two files, a working console script,
and user errors that come out as one line with exit code 2."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from streid_core.cli import main
from streid_core.errors import StreidError

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])


def _conda_pip_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    return set(pip_sections[0])


def test_environment_yml_installs_the_same_packages_as_pyproject():
    assert _conda_pip_requirements() == _pyproject_requirements()


def test_torch_pins_match_what_the_machines_provide():
    reqs = _pyproject_requirements()
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs


def test_console_script_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "streid_core", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: streid" in out


def test_user_error_is_one_line_and_exit_code_2(capsys, monkeypatch):
    def boom(args):
        raise StreidError("/no/such/file: missing; create it")

    import streid_core.cli as cli

    real_build = cli.build_parser

    def build():
        parser = real_build()
        sub = next(a for a in parser._actions if a.dest == "command")
        sub.add_parser("boom").set_defaults(run=boom)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    assert main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "streid: error: /no/such/file: missing; create it"
    assert "Traceback" not in err


def test_makefile_and_ci_use_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from streid_core.atomic import atomic_directory, atomic_file

    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="^crash$"):  # the caller's error, unchanged
        with atomic_file(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []

    folder = tmp_path / "dataset"
    with pytest.raises(RuntimeError, match="^crash$"):
        with atomic_directory(folder) as tmp:
            (tmp / "a.txt").write_text("x")
            raise RuntimeError("crash")
    assert not folder.exists() and list(tmp_path.iterdir()) == []

    with atomic_directory(folder) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (folder / "a.txt").read_text() == "x"
    with pytest.raises(FileExistsError, match="dataset"):  # names the folder it will not replace
        with atomic_directory(folder) as tmp:
            pass
    with atomic_directory(folder, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("y")
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
