"""bf16 on the CPU: the AMX cap set at import and the float32-vs-bf16 self-check that makes
training and extraction fall back to float32 where this CPU's bf16 kernels are wrong."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from streid_core import numerics
from streid_core.numerics import AMX_CAP, Bf16Check, cap_amx_for_bf16, check_bf16, cpu_has_amx, relative_error

pytestmark = pytest.mark.precision


def test_cpu_has_amx_reads_the_flags_line(tmp_path):
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_bf16\n")
    assert cpu_has_amx(str(amx)) and not cpu_has_amx(str(plain))
    assert not cpu_has_amx(str(tmp_path / "missing"))


def test_the_cap_is_set_only_on_amx_cpus_and_never_over_a_users_choice():
    env: dict[str, str] = {}
    assert cap_amx_for_bf16(env, has_amx=True) == AMX_CAP and env == {"ONEDNN_MAX_CPU_ISA": AMX_CAP}
    env = {}
    assert cap_amx_for_bf16(env, has_amx=False) is None and env == {}
    env = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert cap_amx_for_bf16(env, has_amx=True) is None and env == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    env = {"STREID_ALLOW_AMX": "1"}
    assert cap_amx_for_bf16(env, has_amx=True) is None and "ONEDNN_MAX_CPU_ISA" not in env


def test_importing_streid_caps_onednn_on_this_machine_exactly_when_it_has_amx():
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "STREID_ALLOW_AMX")}
    code = "import os, streid_core; print(os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (AMX_CAP if cpu_has_amx() else "unset")


def test_relative_error_is_the_largest_relative_l2_distance():
    reference = [torch.tensor([3.0, 4.0]), torch.tensor([1.0, 0.0])]
    candidate = [torch.tensor([3.0, 4.5]), torch.tensor([1.0, 0.0])]
    assert relative_error(reference, candidate) == pytest.approx(0.1)  # |(0, 0.5)| / |(3, 4)|
    assert relative_error(reference, [candidate[0], torch.tensor([float("nan"), 0.0])]) == float("inf")
    assert Bf16Check(0.04).agrees and not Bf16Check(0.06).agrees and not Bf16Check(float("inf")).agrees


class BrokenUnderBf16(nn.Module):
    """Stands in for a CPU whose bf16 kernels are wrong: exact in float32, 20 % off (or NaN)
    under bf16 autocast."""

    def __init__(self, nan: bool = False) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.nan = nan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.float().flatten(1)[:, :8] * self.scale
        if torch.is_autocast_enabled("cpu"):
            return out * float("nan") if self.nan else out * 1.2
        return out


def test_the_self_check_passes_a_resnet_and_fails_wrong_or_nan_bf16():
    torch.manual_seed(0)
    from streid_core.models.reid import ReIDEncoder

    model = ReIDEncoder("resnet18", 4).eval()
    x = torch.randn(4, 3, 64, 32)
    good = check_bf16(lambda: [model(x)])
    assert good.agrees and 0 < good.relative_error < 0.05
    assert "using bf16" in good.message("test")
    wrong = check_bf16(lambda: [BrokenUnderBf16()(x)])
    assert wrong.relative_error == pytest.approx(0.2, rel=1e-6) and not wrong.agrees
    assert "20.0 % off float32" in wrong.message("test") and "float32 instead" in wrong.message("test")
    nan = check_bf16(lambda: [BrokenUnderBf16(nan=True)(x)])
    assert not nan.agrees and "NaN/inf" in nan.message("test")


def test_feature_extraction_falls_back_to_float32_when_bf16_is_wrong(tmp_path, capsys):
    from PIL import Image

    from streid_core.data.records import Record
    from streid_core.evaluation.features import extract_features

    records = []
    for i in range(3):
        Image.new("RGB", (16, 32), (40 * i, 90, 200 - 30 * i)).save(tmp_path / f"{i}.png")
        records.append(Record(str(tmp_path / f"{i}.png"), i, 0))
    model = BrokenUnderBf16()
    fp32, _, _ = extract_features(model, records, height=32, width=16)
    bf16, _, _ = extract_features(model, records, height=32, width=16, dtype=torch.bfloat16)
    assert torch.equal(bf16, fp32)  # the whole extraction ran in float32
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "feature extraction" in err and "running in float32 instead" in err


def test_training_falls_back_to_float32_and_says_so_in_its_log(tmp_path, monkeypatch):
    """A CPU whose bf16 disagrees (simulated at the self-check; the kernels here may be fine):
    the run trains in float32, evaluates in float32, and its log says why."""
    from _make_train_run import tiny_config, tiny_openreid

    from streid_core.training import engine
    from streid_core.training.baseline import train_baseline

    seen = []

    def disagreeing(forward, *args, **kwargs):
        outputs = forward()  # the task's real probe runs
        seen.append([tuple(t.shape) for t in outputs])
        return Bf16Check(0.145)

    monkeypatch.setattr(engine, "check_bf16", disagreeing)
    torch.set_num_threads(1)
    config = tiny_config(tiny_openreid(tmp_path / "data"), tmp_path / "logs", amp="bf16", epochs=1,
                         max_iters_per_epoch=1)
    train_baseline(config)
    log = (tmp_path / "logs" / "log.txt").read_text()
    assert "bf16 is 14.5 % off float32" in log and "running in float32 instead" in log
    assert "amp off" in log  # the epochs that followed ran in float32
    assert seen and seen[0][0][0] > 0  # the probe embedded real training images


def test_training_keeps_bf16_where_the_self_check_agrees(tmp_path):
    from _make_train_run import tiny_config, tiny_openreid

    from streid_core.training.baseline import train_baseline

    torch.set_num_threads(1)
    config = tiny_config(tiny_openreid(tmp_path / "data"), tmp_path / "logs", amp="bf16", epochs=1,
                         max_iters_per_epoch=1)
    train_baseline(config)
    log = (tmp_path / "logs" / "log.txt").read_text()
    assert "bf16 self-check (BaselineTask)" in log and "using bf16" in log and "amp bf16" in log


def test_numerics_is_importable_without_torch_side_effects():
    # the cap must be decided before torch's first convolution: importing numerics runs none
    assert "torch" not in numerics.__dict__
