"""Tests of the ``backburner`` command."""
