"""Subcommands of the ``delrec-edge`` CLI, one module each."""
