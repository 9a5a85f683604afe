"""``python -m bot``: the navigator command."""

import sys

from bot.cli import main

sys.exit(main())
