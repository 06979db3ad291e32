"""Benchmarks, run from the repository root.

- ``python -m bench.cancellation`` (``make bench-cancellation``): request
  cancellation latency and the middleware's cost per request, side by
  side with the polling ``request.is_disconnected()`` recipe.
- ``python -m bench.jobs`` (``make bench-jobs``): background jobs, side
  by side with Huey.

Results are printed as tables and written as JSON to ``bench/results/``.
"""
