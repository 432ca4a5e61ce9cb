"""`python tools/twin <command>`: see twin/cli.py."""

import sys
from pathlib import Path

# Run as a directory: its parent (tools/) holds the package and local_standins.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twin.cli import main

sys.exit(main())
