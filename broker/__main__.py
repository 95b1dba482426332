"""``python -m broker``: the same command line as the ``broker`` console script."""

from broker.cli import main

if __name__ == "__main__":
    main()
