import sys

from assistant.eval.cli import main

sys.exit(main())
