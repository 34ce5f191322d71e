"""Helpers shared by the tests: small integer networks, hypothesis strategies, toy and tonic datasets."""
