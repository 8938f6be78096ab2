"""benchmarks/gpu_paper_run.py: the three stage-0 arms it runs side by side on a lent GPU are the
seed's command line, the seed's line under `--preset cpu-draw`, and the seed's line with G off."""
import importlib.util
import sys
from pathlib import Path

from streid_core.cli import build_parser
from streid_core.cli.train import run_config

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_paper_run.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_paper_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _model(flags: list[str]):
    return run_config(build_parser().parse_args(["train", *flags])).model


def test_each_arm_is_the_seed_line_with_only_its_own_change():
    script = _script()
    seed = script.SEED_STAGE0
    assert script.arm_flags("faithful") == seed
    faithful, recipe, control = (_model(script.arm_flags(arm)) for arm in ("faithful", "recipe", "control"))
    # the seed's stage-0 settings
    assert (faithful.stage, faithful.lr, faithful.lambda_recon, faithful.lambda_d, faithful.lambda_dp) == (0, 2e-5, 10.0, 0.1, 0.1)
    assert faithful.connect_layers == 0 and not faithful.paint_limbs
    # the recipe keeps the preset's adversarial weights (0), not the seed's 0.1, and paints from stage 1
    assert (recipe.lambda_d, recipe.lambda_dp, recipe.connect_layers, recipe.ngf) == (0.0, 0.0, 5, 32)
    assert (recipe.paint_limbs, recipe.paint_from, recipe.paint_layer) == (True, "source-limbs", 1)
    assert (recipe.lr, recipe.lambda_recon, recipe.stage) == (2e-5, 10.0, 0)
    # the control: E alone, everything else the seed's
    assert (control.lambda_recon, control.lambda_d, control.lambda_dp) == (0.0, 0.0, 0.0)
    assert control.lr == 2e-5 and control.last_stride == 1 and control.smooth_label
    control_run = run_config(build_parser().parse_args(["train", *script.arm_flags("control")]))
    assert control_run.inter_rate == 0.0 and control_run.skip_frame == 10
    assert run_config(build_parser().parse_args(["train", *seed])).inter_rate == 0.7
