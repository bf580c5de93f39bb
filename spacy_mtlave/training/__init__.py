"""Corpora, batchers, the train commands, checkpoints, per-vertical export, run.json, partners, shipped configs."""
