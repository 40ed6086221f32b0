"""`python -m scripts.infra up|down|status|install` (the package's docstring says more)."""

import sys

from scripts.infra import main

sys.exit(main(sys.argv[1:]))
