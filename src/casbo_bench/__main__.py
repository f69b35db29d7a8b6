"""``python -m casbo_bench``: the ``casbo-bench`` command line (see :mod:`casbo_bench.cli`)."""

import sys

from casbo_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
