"""streid: a workbench for pose-invariant person re-identification (ST-ReIDNet)."""

__version__ = "0.1.0"
