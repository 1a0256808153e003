"""``python -m bluezoned`` runs the command-line interface."""

from bluezoned.cli import main

main()
