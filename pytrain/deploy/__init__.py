"""Run folders through the integer side: generate a run's C folder, and run its test split through the host
build and the firmware (:mod:`codegen.verify` does the proving; this package finds the model and the samples)."""
