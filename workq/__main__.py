import sys

from workq.cli import main

sys.exit(main())
