"""The lowest layer, shared by both sides of the chain: user errors, atomic writes, the version."""
