"""Evaluation: metrics and protocols, re-ranking, feature extraction, export."""
