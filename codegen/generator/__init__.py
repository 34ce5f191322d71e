"""C generation: :mod:`~codegen.generator.plan` computes every number, :mod:`~codegen.generator.emit` renders the
templates (``templates/``, the C skeleton only) and copies the hand-written runtime (``runtime/``);
:mod:`~codegen.generator.memory` reports flash and RAM."""
