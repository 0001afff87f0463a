"""``python -m bce_compat``: the ``bce-compat`` command, for environments without the console script.

    python -m bce_compat conformance --backends numpy --cases 'ours-*' --no-native
"""

import sys

from bce_compat.cli import main

if __name__ == "__main__":
    sys.exit(main())
