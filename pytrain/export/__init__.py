"""From the float model to the integer model file: BatchNorm folding, the fake-quantized network (QAT), and
the quantize step that writes ``model.int.npz`` after proving it equal to the fake-quant model."""
