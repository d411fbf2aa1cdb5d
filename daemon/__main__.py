"""`python -m daemon` is the `buzon` command."""

import sys

from daemon.cli.main import main

sys.exit(main())
