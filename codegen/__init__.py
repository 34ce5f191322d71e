"""delrec-edge, integer side: everything from the frozen integer model to C that runs on Cortex-M.

It never imports :mod:`pytrain` or torch (a test proves it). Sub-packages, in the order of the chain:

* :mod:`codegen.common`    helpers every layer above needs: the user-error type, atomic writes, the version
* :mod:`codegen.integer`   the integer contract: the arithmetic, the network, the model file, the reference
  model (the executable definition) and the static overflow analysis
* :mod:`codegen.generator` C generation: the plan (every number), the Jinja2 templates, the hand-written runtime
* :mod:`codegen.verify`    proof: host builds through cffi, firmware builds and QEMU runs, and the one
  routine that compares an implementation's trace with the reference
"""
