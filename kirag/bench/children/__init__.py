"""Benchmark steps that run in a process of their own (`python -m kirag.bench.children.NAME`), so
their peak memory is their own and no JVM or model is shared; each prints one JSON line."""
