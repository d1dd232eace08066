"""The pure core of the write side: state, evolve and decide. No I/O imports (import-linter)."""
