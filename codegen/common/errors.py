"""The one exception type for bad user input.

Anything raised as :class:`UserError` is printed by the CLI as a single line
(``delrec-edge: error: ...``) with exit status 2, never as a traceback.
"""


class UserError(Exception):
    """Bad input from the user: a missing folder, an unreadable file, an unknown preset."""
