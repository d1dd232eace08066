"""`python -m services.cli`: the same as the `rectrack` console script."""

from services.cli.main import main

main()
