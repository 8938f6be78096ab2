"""Experiments: several training runs built as configs (the dataclasses the CLI builds), run by the
trainers' entry points, then scored and reported.

st_vs_baseline   `streid st-vs-baseline`: ST-ReIDNet against the baseline over seeds, resumable
"""
