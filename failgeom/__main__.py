"""``python -m failgeom``: the same as the ``failgeom`` command."""

import sys

from .cli import main

sys.exit(main())
