"""`python -m daemon` is the `buzon` command."""

import sys

from daemon.cli import main

sys.exit(main())
