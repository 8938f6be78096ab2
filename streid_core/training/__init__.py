"""Trainers (baseline and ST-ReIDNet), checkpoints, logging, distributed helpers."""
