"""Suite-wide settings: the pass manager verifies the IR after every pass in every test."""

import os

os.environ.setdefault("CNNCOMPILE_VERIFY", "1")
