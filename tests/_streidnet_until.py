"""`streid train` that stops on purpose, for the distributed tests (run as a script, also under
torchrun):

    python tests/_streidnet_until.py --stop-before N   <streid train flags>   # a run cut after epoch N-1
    python tests/_streidnet_until.py --fail-rank R     <streid train flags>   # rank R fails in epoch 1

--stop-before: every rank stops before epoch N, after epoch N-1's checkpoint; exit 0.
--fail-rank: rank R raises at the start of epoch 1 while the others go on into their first
collective; exit as `streid train` does (2, one line).
"""
from __future__ import annotations

import os
import sys

from streid_core.cli import build_parser
from streid_core.errors import StreidError
from streid_core.training.hooks import TrainingHook
from streid_core.training.streidnet_run import train_streidnet


class Stop(Exception):
    pass


class StopBefore(TrainingHook):
    main_process_only = False

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def before_epoch(self, ctx, epoch: int) -> None:
        if epoch == self.epoch:
            raise Stop


class FailOn(TrainingHook):
    main_process_only = False

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def before_epoch(self, ctx, epoch: int) -> None:
        if int(os.environ.get("RANK", "0")) == self.rank:
            raise OSError(28, "No space left on device (simulated)")


def main(argv: list[str]) -> int:
    option, value, *rest = argv
    from streid_core.cli.train import run_config

    cfg = run_config(build_parser().parse_args(["train", *rest]))
    hook = StopBefore(int(value)) if option == "--stop-before" else FailOn(int(value))
    try:
        train_streidnet(cfg, hooks=[hook])
    except StreidError as exc:
        if isinstance(exc.__cause__, Stop):
            return 0
        print(f"streid: error: {exc}", file=sys.stderr)
        return 2
    except Stop:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
