"""`python -m bench [--device cpu|cuda] [--small] ...` generation speed (bench/generation.py)
| `python -m bench tools ...` (bench/tools.py) | `python -m bench load ...` (bench/load.py)
| `python -m bench soak ...` (bench/soak.py) | `python -m bench turns ...` (bench/turns.py)
| `python -m bench documents ...` (bench/documents.py)."""

import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "tools":
        from bench.tools import main
    elif args and args[0] == "load":
        from bench.load import main
    elif args and args[0] == "soak":
        from bench.soak import main
    elif args and args[0] == "turns":
        from bench.turns import main
    elif args and args[0] == "documents":
        from bench.documents import main
    elif args and args[0] == "generation":
        from bench.generation import main
    else:
        from bench.generation import main

        args = ["generation", *args]
    sys.exit(main(args[1:]))
