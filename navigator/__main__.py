"""``python -m navigator``: the navigator command."""

import sys

from navigator.cli import main

sys.exit(main())
