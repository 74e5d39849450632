import sys

from liqsignals.cli import main

sys.exit(main())
