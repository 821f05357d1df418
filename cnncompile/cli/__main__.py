"""`python -m cnncompile.cli`, the same as the `cnncompile` command."""

import sys

from cnncompile.cli import main

sys.exit(main())
