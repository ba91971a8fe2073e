"""`python -m controller.cli`: the same program as the `release-controller` console script."""

from controller.cli import main

main()
