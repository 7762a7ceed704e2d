"""``python -m streamfiqa.cli``: the ``streamfiqa`` command."""
import sys

from streamfiqa.cli import main

sys.exit(main())
