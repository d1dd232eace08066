"""`python -m services.cli`: the same as the `rectrack` console script."""

from services.cli.main import main

# Guarded, so importing this module (as multiprocessing's spawn may do) runs nothing.
if __name__ == "__main__":
    main()
