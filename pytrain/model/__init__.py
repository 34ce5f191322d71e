"""The float Conv+DelRec model: configuration and presets, neurons and delays as pure step functions, the
recurrent operators, the fused time loop, layers, the network, and its checkpoint file."""
