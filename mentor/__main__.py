"""`python -m mentor`: the `mentor` command (see `mentor --help`)."""

import sys

from mentor.cli import main

if __name__ == "__main__":
    sys.exit(main())
