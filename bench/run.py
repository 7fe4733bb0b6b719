"""The former ``make bench`` entry point, kept so ``python -m bench.run`` still works.

Everything it measured (matching, rendering, end-to-end deliveries/s and latency) is now part
of ``python -m bench``, which runs each measure beside its baseline; this delegates to it.
"""

from __future__ import annotations

import sys

from bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
