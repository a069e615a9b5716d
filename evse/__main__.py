"""``python -m evse`` = the ``evse`` command."""

import sys

from evse.cli import main

sys.exit(main())
