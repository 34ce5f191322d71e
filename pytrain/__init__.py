"""delrec-edge, training side (PyTorch): data, the float model, training, quantization-aware training and export,
and the drivers, benchmarks, figures and CLI built on the integer side (:mod:`codegen`).

Sub-packages, in the order of the chain: :mod:`~pytrain.data`, :mod:`~pytrain.model`, :mod:`~pytrain.training`,
:mod:`~pytrain.export`, :mod:`~pytrain.deploy`, then :mod:`~pytrain.bench`, :mod:`~pytrain.report`,
:mod:`~pytrain.interop` and :mod:`~pytrain.cli`. :mod:`~pytrain.runfolder` names what a run folder holds.
"""

from codegen.common.version import __version__

__all__ = ["__version__"]
