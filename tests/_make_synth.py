"""Tiny SynthDance datasets for tests (import as `from _make_synth import ...`)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from streid_core.data.synth import SynthConfig

# 14 identities in 4 videos, 8 sampled frames each, 64x32 crops: about 100 images, ~1 s.
TINY = SynthConfig(seed=3, height=64, width=32, ids=14, videos=4, frames=8)


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under root."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
