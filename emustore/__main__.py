import sys

from emustore.cli import main

sys.exit(main())
