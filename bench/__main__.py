"""`python -m bench tools ...` (bench/tools.py) | `python -m bench load ...` (bench/load.py)."""

import sys

USAGE = ("usage: python -m bench tools [--runs N] [--threads N] [--out FILE]\n"
         "       python -m bench load [--clients N] [--requests M] [--url URL] [--out FILE]")

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] not in ("tools", "load"):
        sys.exit(USAGE)
    if args[0] == "tools":
        from bench.tools import main
    else:
        from bench.load import main
    sys.exit(main(args[1:]))
