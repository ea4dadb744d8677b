"""`python -m scripts.bench [--quick] [--runs N] [--only NAME ...] [--output FILE]`."""

import sys

from scripts.bench.suite import main

sys.exit(main())
