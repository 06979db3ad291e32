"""backburner: request cancellation and durable background jobs."""

__version__ = "0.1.0"
