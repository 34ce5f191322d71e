"""``delrec-edge report``: a run's figures. :mod:`~pytrain.report.figures` draws (pure functions),
:mod:`~pytrain.report.rundata` gathers what a run holds and writes the folder."""
