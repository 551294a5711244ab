"""`python -m bench tools [--runs N] [--threads N] [--out FILE]`: see bench/tools.py."""

import sys

from bench.tools import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "tools":
        sys.exit("usage: python -m bench tools [--runs N] [--threads N] [--out FILE]")
    sys.exit(main(args[1:]))
