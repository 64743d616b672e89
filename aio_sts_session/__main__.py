"""``python -m aio_sts_session``: the command line (see ``aio-sts-session --help``)."""

import sys

from .cli.console import main

if __name__ == "__main__":
    sys.exit(main())
