"""``python -m rosetta``: the ``rosetta`` command."""

from rosetta.cli import main

if __name__ == "__main__":
    main()
