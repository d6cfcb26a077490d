"""Layer 5: the command line (typer).  ``main`` is the console-script entry point."""

from rflint.cli.app import app, main

__all__ = ["app", "main"]
