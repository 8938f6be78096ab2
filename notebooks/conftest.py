"""nbval runs each notebook in a fresh temporary folder, never in the checkout.

The notebooks' default paths are relative to this folder (`../data`, `../reports/notebooks`,
`../checkpoints/...`), which is right for a user in JupyterLab and wrong for a test: a test would
write into the repository and reuse whatever an earlier run left there, so a dirty checkout could
pass on stale results. Before the kernel of a notebook starts, this hook gives it an IPython
directory whose startup file moves the kernel into `<tmp>/<notebook>/notebooks`, so the same
relative defaults resolve to `<tmp>/<notebook>/data`, `<tmp>/<notebook>/reports/notebooks`, ...
Each notebook starts from nothing, as on a fresh clone. The folders are under pytest's basetemp
(`--basetemp` chooses it). The notebooks themselves are unchanged: users still get the normal
folders."""
from __future__ import annotations

import os

import pytest

STARTUP = '''\
# Written by notebooks/conftest.py: this kernel runs a notebook under test, in a temporary folder.
import os
os.chdir({cwd!r})
'''


def notebook_workdir(config: pytest.Config, stem: str):
    """A fresh `<basetemp>/<stem>N/` holding `notebooks/` (the kernel's working directory) and
    `ipython/` (its IPython directory, whose startup file changes into `notebooks/`)."""
    root = config._tmp_path_factory.mktemp(stem, numbered=True)
    cwd = root / "notebooks"
    cwd.mkdir()
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-streid-notebook-workdir.py").write_text(STARTUP.format(cwd=str(cwd)))
    config.stash.setdefault(WORKDIRS, []).append(root)
    return root


WORKDIRS = pytest.StashKey[list]()
WEIGHT_FILES = (".pth.tar", ".pth", ".pt")


def pytest_sessionfinish(session):
    """The notebooks' trained networks are deleted when the run ends (their figures, reports and
    data stay): a notebook run leaves 0.4-1.1 GB of checkpoints otherwise."""
    for root in session.config.stash.get(WORKDIRS, []):
        for path in root.rglob("*"):
            if path.name.endswith(WEIGHT_FILES) and path.is_file():
                path.unlink()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while setting up its first cell: only then is IPYTHONDIR
    pointed at the notebook's temporary folder (the kernel inherits the environment), and it is
    restored at once, so papermill, JupyterLab and every other test see the environment as it was."""
    notebook = item.parent
    if not str(item.path).endswith(".ipynb") or hasattr(notebook, "streid_workdir"):
        yield
        return
    notebook.streid_workdir = notebook_workdir(item.config, item.path.stem)
    before = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(notebook.streid_workdir / "ipython")
    try:
        yield
    finally:
        if before is None:
            del os.environ["IPYTHONDIR"]
        else:
            os.environ["IPYTHONDIR"] = before
