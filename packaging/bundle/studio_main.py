"""The bundle's one executable: the window with no arguments, the CLI with them (``studio doctor``, ...)."""

import multiprocessing
import sys

from studio.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
