"""Benchmarks: run as modules, results written as JSON."""
