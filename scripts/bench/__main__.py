"""`python -m scripts.bench [--quick] [--only SCENARIO ...] [--runs N] [--images NAME ...] ...` (see --help)."""

import sys

from scripts.bench.suite import main

sys.exit(main())
