"""``python -m reasoner``: the ``reason`` command."""

from reasoner.cli import entry

entry()
