"""The ``factory`` command line (Typer + Rich)."""
