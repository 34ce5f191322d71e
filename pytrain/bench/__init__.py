"""Benchmarks (commands that print tables, never timed tests): training steps, inference per sample, the audio
front end, and the suite that takes every recurrent variant through the whole chain."""
