"""streid: a workbench for pose-invariant person re-identification (ST-ReIDNet)."""
from .numerics import cap_amx_for_bf16

__version__ = "0.1.0"

# Before any oneDNN primitive exists: bf16 results must not depend on whether the CPU has AMX
# (see numerics.py).
cap_amx_for_bf16()
