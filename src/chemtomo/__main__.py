"""``python -m chemtomo``: the same command line as ``chemtomo``."""

from chemtomo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
