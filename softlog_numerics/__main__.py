import sys

from softlog_numerics.cli.main import main

sys.exit(main())
