"""The convention of the commands streid added (every command but `baseline` and `train`, which
keep the original system's flags): `-d NAME|DIR` + `--data-dir` for a dataset, `--device`
defaulting to auto, `--amp off|bf16|fp16`, `--checkpoint` always a file that is read, and
--help showing every default. The parser is walked, so a new command is checked as it appears."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from streid_core.cli import _args, build_parser, main
from streid_core.cli._args import DefaultsHelpFormatter, dataset_root
from streid_core.errors import StreidError
from streid_core.training.config import AMP_MODES

ORIGINAL = {"baseline", "train"}  # the original system's flags, kept as they were
# commands that run a network (besides st-vs-baseline, whose --amp is its budget runs'): each takes --amp, default off
RUNS_A_NETWORK = {"evaluate", "track", "track-bench", "transfer", "transfer-eval"}


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (sub-)sub-command parser below `parser`, as ("prepare folder", parser)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                if path.split()[0] not in ORIGINAL:
                    found.append((path, sub))
                    found += _commands(sub, path)
    return found


COMMANDS = _commands(build_parser())


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_streid_command_is_walked():
    names = {name for name, _ in COMMANDS}
    assert {"evaluate", "export", "track", "track-eval", "track-bench", "transfer", "transfer-eval",
            "st-vs-baseline", "synth", "synth-video", "pose", "prepare", "prepare folder", "notebooks",
            "notebooks run", "demo", "info"} <= names
    assert not names & ORIGINAL


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_follows_the_convention(name, parser):
    device = _option(parser, "--device")
    if device is not None:
        assert device.default == "auto", f"{name}: --device defaults to {device.default!r}, not auto"
    amp = _option(parser, "--amp")
    if name in RUNS_A_NETWORK:
        assert amp is not None, f"{name} runs a network but has no --amp"
        assert amp.default == "off", f"{name}: --amp defaults to {amp.default!r}, not off (float32)"
    if amp is not None:
        assert set(amp.choices or ()) == {"off", "bf16", "fp16"}, f"{name}: --amp choices {amp.choices}"
        assert amp.const == "bf16", f"{name}: a bare --amp means {amp.const!r}, not bf16"
    checkpoint = _option(parser, "--checkpoint")
    if checkpoint is not None:  # an input file: its help says it is read, its metavar names a file
        assert (checkpoint.help or "").startswith("read:"), f"{name}: --checkpoint is not documented as an input"
        assert "FILE" in (checkpoint.metavar or ""), f"{name}: --checkpoint's metavar {checkpoint.metavar!r}"
        assert not isinstance(checkpoint, (argparse._StoreTrueAction, argparse._StoreFalseAction))
    dataset = _option(parser, "--dataset")
    if dataset is not None:
        assert "-d" in dataset.option_strings, f"{name}: --dataset without -d"
        assert _option(parser, "--data-dir") is not None, f"{name}: --dataset without --data-dir"
    if _option(parser, "--data-dir") is not None:
        assert dataset is not None, f"{name}: --data-dir without -d/--dataset"


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_renders_and_shows_every_default(name, parser):
    assert issubclass(parser.formatter_class, DefaultsHelpFormatter), f"{name}: help does not show defaults"
    text = " ".join(parser.format_help().split())
    assert f"usage: streid {name}" in text
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if action.default not in (None, False, [], "", argparse.SUPPRESS):
            assert "default" in formatter._expand_help(action), f"{name} {action.option_strings}: no default shown"


def test_amp_modes_are_the_trainers():
    assert _args.AMP_MODES == AMP_MODES


def _dataset(tmp_path: Path, name: str = "DanceReID") -> Path:
    root = tmp_path / "data" / name
    root.mkdir(parents=True)
    return root


def _args_for(**values) -> argparse.Namespace:
    return argparse.Namespace(**{"dataset": None, "data_dir": "data", **values})


def test_dataset_by_name_path_or_positional(tmp_path, monkeypatch):
    root = _dataset(tmp_path)
    data = str(tmp_path / "data")
    assert dataset_root(_args_for(dataset="dancereid", data_dir=data)) == root  # case-insensitive name
    assert dataset_root(_args_for(dataset=str(root))) == root  # -d DIR
    assert dataset_root(_args_for(dataset_dir=str(root))) == root  # DATASET positional
    assert dataset_root(_args_for(dataset_dir="DanceReid", data_dir=data)) == root  # a positional name
    monkeypatch.chdir(tmp_path / "data")
    assert dataset_root(_args_for(dataset="DanceReID", data_dir="elsewhere")) == Path("DanceReID")  # here


@pytest.mark.parametrize("values, words", [
    ({}, "no dataset"),
    ({"dataset": "a", "dataset_dir": "b"}, "give the dataset once"),
    ({"dataset": "nosuch"}, "not found"),
    ({"dataset": "x/nosuch"}, "x/nosuch: no such dataset folder"),
])
def test_dataset_errors_are_one_line(tmp_path, values, words):
    _dataset(tmp_path)
    with pytest.raises(StreidError) as error:
        dataset_root(_args_for(data_dir=str(tmp_path / "data"), **values))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_dataset_a_command_generates_need_not_exist(tmp_path):
    data = tmp_path / "data"
    assert dataset_root(_args_for(dataset="synthdance", data_dir=str(data)), must_exist=False) == data / "synthdance"
    assert dataset_root(_args_for(dataset="x/y"), must_exist=False) == Path("x/y")


def test_old_spellings_still_parse():
    parser = build_parser()
    assert parser.parse_args(["demo", "--data", "d/s"]).dataset == "d/s"  # demo's old --data DIR
    assert parser.parse_args(["transfer-eval", "C", "--dataset", "D"]).checkpoint_file == "C"  # the README's form
    evaluate = parser.parse_args(["evaluate", "--checkpoint", "C", "-d", "x", "--amp"])
    assert evaluate.amp == "bf16"  # the bare --amp of before


def test_transfer_eval_takes_the_checkpoint_once(tmp_path, capsys):
    assert main(["transfer-eval", "-d", str(tmp_path)]) == 2
    assert "give the checkpoint once" in capsys.readouterr().err
    assert main(["transfer-eval", "a", "--checkpoint", "b", "-d", str(tmp_path)]) == 2
    assert "give the checkpoint once" in capsys.readouterr().err
