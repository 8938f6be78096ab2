"""bf16 on the CPU whose results do not depend on which kernels the CPU picks.

Two guards, both about torch 2.14.1's oneDNN kernels:

1. On a CPU with AMX (Intel Sapphire Rapids and later: `amx_bf16` in /proc/cpuinfo), oneDNN's
   AMX bf16 convolutions return NaN or features 14 % off float32 for some shapes (tail handling
   when a dimension is not a multiple of 32). When streid is imported, and the user has not set
   `ONEDNN_MAX_CPU_ISA` or `STREID_ALLOW_AMX=1`, it caps oneDNN at AVX512_CORE_BF16: bf16 then
   runs on the AVX-512 bf16 kernels, which agree with float32. float32 never uses AMX, so it
   loses nothing. oneDNN reads the cap once, at its first primitive: a process that ran a
   convolution before importing streid keeps AMX, and guard 2 catches what that breaks.
2. Before bf16 is used on the CPU (training, feature extraction, evaluation), `check_bf16` runs
   the actual networks on a probe batch in float32 and in bf16. When they disagree by more than
   `BF16_TOLERANCE` (relative L2 distance of the outputs) or bf16 gives NaN/inf, the caller
   runs in float32 instead and says so in one line.

`amp_dtype`, `check_amp` and `autocast` turn an `--amp off|bf16|fp16` mode into autocast (for
training and for every command that runs a network); `Precision` runs networks batch by batch
under a mode, with guard 2 on the first batch.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
AMX_CAP = "AVX512_CORE_BF16"
ALLOW_AMX_VARIABLE = "STREID_ALLOW_AMX"
# bf16 keeps 8 significant bits (~0.4 % per rounding); through a ResNet the outputs end up
# 0.5-3 % off float32 (measured: ResNet-18 features 0.6 %). The AMX bug gives 14.5 % or NaN.
BF16_TOLERANCE = 0.05


def cpu_has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU advertises AMX bf16 tiles (Linux; False where it cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def cap_amx_for_bf16(environ: dict | None = None, has_amx: bool | None = None) -> str | None:
    """Set oneDNN's ISA cap below AMX when the CPU has AMX and nobody chose otherwise. Returns
    the cap this call set, or None when it left the environment alone."""
    env = os.environ if environ is None else environ
    if ISA_VARIABLE in env or env.get(ALLOW_AMX_VARIABLE, "") not in ("", "0"):
        return None
    if not (cpu_has_amx() if has_amx is None else has_amx):
        return None
    env[ISA_VARIABLE] = AMX_CAP
    return AMX_CAP


@dataclass(frozen=True)
class Bf16Check:
    """Outcome of running the same networks in float32 and bf16 on one probe batch."""

    relative_error: float  # largest relative L2 distance over the outputs (inf for NaN/inf)
    tolerance: float = BF16_TOLERANCE

    @property
    def agrees(self) -> bool:
        return self.relative_error <= self.tolerance

    def message(self, what: str) -> str:
        isa = os.environ.get(ISA_VARIABLE, "no cap")
        if self.agrees:
            return (f"bf16 self-check ({what}): {100 * self.relative_error:.2f} % from float32 on a probe batch "
                    f"(bound {100 * self.tolerance:.0f} %, oneDNN ISA {isa}); using bf16")
        found = "NaN/inf" if self.relative_error == float("inf") else f"{100 * self.relative_error:.1f} %"
        return (f"bf16 self-check ({what}): bf16 is {found} off float32 on a probe batch on this CPU "
                f"(bound {100 * self.tolerance:.0f} %, oneDNN ISA {isa}); running in float32 instead")


def relative_error(reference: Sequence, candidate: Sequence) -> float:
    """Largest relative L2 distance between paired tensors; inf if a candidate is not finite."""
    import torch

    worst = 0.0
    for ref, got in zip(reference, candidate, strict=True):
        ref, got = ref.detach().float(), got.detach().float()
        if not bool(torch.isfinite(got).all()):
            return float("inf")
        scale = float(ref.norm())
        worst = max(worst, float((got - ref).norm()) / max(scale, 1e-12))
    return worst


def check_bf16(forward: Callable[[], Sequence], device_type: str = "cpu",
               tolerance: float = BF16_TOLERANCE) -> Bf16Check:
    """Run `forward` (returning a sequence of tensors, with no side effects) in float32 and under
    bf16 autocast, and compare."""
    import torch

    with torch.no_grad():
        reference = list(forward())
        with torch.autocast(device_type, dtype=torch.bfloat16):
            candidate = list(forward())
    return Bf16Check(relative_error(reference, candidate), tolerance)


def say(message: str) -> None:
    """One line to the user on stderr (the CLI's and the notebooks' log channel)."""
    print(f"streid: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- --amp outside training

_AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def amp_dtype(amp: str):
    """The autocast dtype of an --amp mode (off, bf16, fp16), None for "off"."""
    import torch

    name = _AMP_DTYPES.get(amp)
    return None if name is None else getattr(torch, name)


def check_amp(amp: str, device) -> None:
    """Refuse a mode the device cannot run: fp16 kernels are CUDA-only."""
    import torch

    from .errors import StreidError

    if amp == "fp16" and torch.device(device).type != "cuda":
        raise StreidError("--amp fp16 needs a CUDA device (fp16 kernels are GPU-only); use --amp bf16 on the CPU")


def autocast(amp: str, device):
    """Autocast context for `amp` on `device`; a null context when amp is "off"."""
    import contextlib

    import torch

    dtype = amp_dtype(amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


class Precision:
    """An --amp mode for networks run batch by batch outside training (tracking, pose transfer):
    `run(forward, name)` calls `forward()` under the mode's autocast and returns its tensor as
    float32. Under bf16 on the CPU the first run of each `name` (E, G, ...) first passes
    `check_bf16` on that very batch; when bf16 disagrees, this Precision runs in float32 from
    then on (that batch included) and says so in one line."""

    def __init__(self, amp: str = "off", device="cpu", what: str = "networks") -> None:
        import torch

        self.device = torch.device(device)
        check_amp(amp, self.device)
        self.amp, self.what = amp, what
        self._checked: set[str] = set()

    def run(self, forward: Callable, name: str = ""):
        if self.amp == "bf16" and self.device.type == "cpu" and name not in self._checked:
            self._checked.add(name)
            check = check_bf16(lambda: [forward()], self.device.type)
            if not check.agrees:
                say(check.message(" ".join(p for p in (self.what, name) if p)))
                self.amp = "off"
        with autocast(self.amp, self.device):
            out = forward()
        return out.float() if hasattr(out, "float") else out
