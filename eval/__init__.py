"""Evaluation: datasets, ranking and QA metrics, run files, leaderboard submissions (kirag.eval)."""

from kirag.eval.runs import read_run, write_run

__all__ = ["read_run", "write_run"]
