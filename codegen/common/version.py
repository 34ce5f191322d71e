"""The release version: one home, read by ``pyproject.toml``, the CLI and every generated file's banner."""

__version__ = "0.1.0"
