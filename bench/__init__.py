"""Benchmarks, run from the repository root.

- ``python -m bench.cancellation`` (``make bench-cancellation``): request
  cancellation latency and the middleware's cost per request, side by
  side with the polling ``request.is_disconnected()`` recipe.

Results are printed as a table and written as JSON to ``bench/results/``.
"""
