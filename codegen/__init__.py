"""delrec-edge code generator (fixed-point C from the integer model file)."""
