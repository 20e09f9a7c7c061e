"""Benchmarks of rac_store, every figure a ratio measured side by side in one run.

* :mod:`benchmarks.runner`: the runner, ``python -m benchmarks`` from the repository
  root (starts its own redis-server, prints a table, writes JSON);
* :mod:`benchmarks.servers`: every redis-server and local cluster the benchmarks start;
* ``bench_*.py``: pytest-benchmark modules, one test per operation, for
  ``pytest benchmarks/ --benchmark-compare`` across commits;
* :mod:`benchmarks.baseline`: the design rac_store replaces, for comparison only.
"""
