"""Benchmarks of the operator against a local control plane and the sidecar emulator.

``python -m bench.run`` (``make bench``) runs the scenarios and writes their figures under
``bench/results/``; ``python -m bench.floor`` is the minimal controller that the time ratios are
taken against. docs/performance.md describes the scenarios, the counting and the latest figures.
"""
