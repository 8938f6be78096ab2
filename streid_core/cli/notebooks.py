"""`streid notebooks run`: execute notebooks headless with papermill into reports/<run-name>/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import StreidError
from ._args import command_parser


def _parse_value(text: str):
    """Parameters given on the command line are YAML scalars/lists, as papermill's -p/-y."""
    import yaml

    return yaml.safe_load(text)


def _load_params_file(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise StreidError(f"{path}: cannot read parameters file ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise StreidError(f"{path}: not valid YAML/JSON; write key: value lines") from None
    if not isinstance(data, dict):
        raise StreidError(f"{path}: expected a mapping of parameter names to values")
    return data


def _run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_dir
    from ..reporting.notebooks import run_notebooks

    check_output_dir(args.reports, "--reports")
    params: dict = {}
    for file in args.params or []:
        params.update(_load_params_file(file))
    for key, value in args.param or []:
        params[key] = _parse_value(value)
    index = run_notebooks(args.names, params, run_name=args.run_name, reports_root=args.reports, log=print,
                          stream=sys.stdout)
    print(f"report: {index}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..reporting.notebooks import available_notebooks

    print("\n".join(available_notebooks()))
    return 0


def register(subparsers) -> None:
    parser = command_parser(subparsers, "notebooks", help="run the notebooks headless (papermill)")
    sub = parser.add_subparsers(dest="notebooks_command", metavar="ACTION", required=True)
    run = command_parser(sub, "run", help="execute notebooks into reports/<run-name>/ with an index.html")
    run.add_argument("names", nargs="*", help="notebooks to run (e.g. 01 or 01_dataset_exploration); default all")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="set a notebook parameter (value parsed as YAML); repeatable")
    run.add_argument("--params", action="append", metavar="FILE",
                     help="YAML/JSON file of parameters; repeatable, -p wins")
    run.add_argument("--run-name", default=None, help="folder name under --reports (default: run-<timestamp>)")
    run.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    run.set_defaults(run=_run)
    lst = command_parser(sub, "list", help="list the notebooks")
    lst.set_defaults(run=_list)
