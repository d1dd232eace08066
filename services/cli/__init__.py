"""The `rectrack` command line: thin typer commands, one module per concern."""
