"""Benchmarks, run from the repository root.

- ``python -m bench.cancellation`` (``make bench-cancellation``): request
  cancellation latency and the middleware's cost per request, side by
  side with the polling ``request.is_disconnected()`` recipe.
- ``python -m bench.jobs`` (``make bench-jobs``): enqueue rate, drain
  rates and enqueue-to-start latency of the job server on SQLite, side
  by side with Huey's ``SqliteHuey``.

Results are printed as a table and written as JSON to ``bench/results/``.
"""
