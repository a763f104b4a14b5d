"""`python -m analysis RUN_DIR [RUN_DIR ...]`: the same as `edgebench analyze`."""

import sys

from edgebench.cli import main

if __name__ == "__main__":
    main(["analyze", *sys.argv[1:]], prog_name="python -m analysis")
