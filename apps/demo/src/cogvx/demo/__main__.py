"""``python -m cogvx.demo ...`` = ``cogvx demo ...`` (through the dispatcher: same errors, codes)."""

import sys

from cogvx.cli.main import main

sys.exit(main(["demo", *sys.argv[1:]]))
