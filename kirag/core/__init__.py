"""The cross-cutting leaves every layer uses: atomic writes, ranges of settings, run records,
progress and cost estimates, interrupts, lazy and optional imports, seeding, answer-text metrics.
Nothing here imports a kirag package above it (tests/test_layering.py)."""
