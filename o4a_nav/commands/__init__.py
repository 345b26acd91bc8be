"""Subcommands of the `o4a` CLI, one module each (see o4a_nav.cli)."""
