"""The integer contract: what a quantized model is and how it computes, independent of PyTorch and of C.

* :mod:`~codegen.integer.fixedpoint` the rounding rule, saturation, rounded shifts and the leak, written once
* :mod:`~codegen.integer.network`    the integer network (data and invariants) and the spec's constants
* :mod:`~codegen.integer.validate`   every invariant of a network, checked
* :mod:`~codegen.integer.modelfile`  the frozen model file (``*.int.npz``): write and read
* :mod:`~codegen.integer.refmodel`   the reference model: the executable definition of the arithmetic
* :mod:`~codegen.integer.overflow`   static worst-case bounds of every intermediate, from the weights
"""
