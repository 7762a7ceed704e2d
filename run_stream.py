#!/usr/bin/env python3
"""streamfiqa from a checkout: the same commands as the installed ``streamfiqa`` console script."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streamfiqa.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
