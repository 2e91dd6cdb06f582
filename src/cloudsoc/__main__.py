"""``python -m cloudsoc`` is the ``cloudsoc`` command."""

from cloudsoc.cli.main import main

main()
