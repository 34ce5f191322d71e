"""Proof that the generated C equals the integer reference, bit for bit.

* :mod:`~codegen.verify.compare`      the one routine that compares an implementation's values with the
  reference's (used by quantize, host parity and firmware runs)
* :mod:`~codegen.verify.hostbuild`    the generated C compiled on the host and loaded through cffi
* :mod:`~codegen.verify.hostworker`   a host build run in a subprocess (sanitizer builds)
* :mod:`~codegen.verify.hostparity`   samples through the host C and the reference, compared
* :mod:`~codegen.verify.firmware_app` the parity firmware's configuration, the values it must print, its output
* :mod:`~codegen.verify.firmware_run` cross builds (make, arm-none-eabi-gcc) and runs on QEMU boards
"""
