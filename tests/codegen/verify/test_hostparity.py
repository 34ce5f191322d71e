"""Host parity detects what it exists to detect: a C that differs from the reference in one weight."""

import dataclasses

import numpy as np
from intnet_builders import tiny_network

from codegen.generator.emit import generate
from codegen.verify.hostparity import host_parity


def test_one_changed_weight_is_reported_with_where_it_first_shows():
    net = tiny_network("conv", n_in=4, n=6, n_layers=2, seed=9)
    x = np.random.default_rng(0).integers(0, 6, (5, 30, 4)).astype(np.uint8)
    y = np.zeros(5, np.int64)
    same = host_parity(net, *generate(net, "neg"), x, y, progress=False)
    assert same.bit_exact == 5 and same.first_mismatch is None

    weight = net.layers[0].weight.copy()
    weight[2, 1] = weight[2, 1] + 1 if weight[2, 1] < 127 else weight[2, 1] - 1
    changed = dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], weight=weight), net.layers[1]))
    result = host_parity(net, *generate(changed, "neg"), x, y, progress=False)  # reference: the original net
    assert result.bit_exact < 5
    assert result.first_mismatch.startswith("sample ") and "layer 0 membrane at step" in result.first_mismatch
    assert "neuron 2 (" in result.first_mismatch  # the neuron whose input weight changed shows first
