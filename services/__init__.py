"""Write side and entry points: commands, the pure domain, the decider, the API and the CLI."""
