"""What the generated C of an integer audio front end needs, computed once from an
:class:`~codegen.integer.frontend.IntFrontEnd` (the tables, the constants, the state fields and the scratch).

Nothing here formats C; ``templates/frontend.c.j2`` arranges these values and the kernels are
``runtime/delrec_frontend.h``. The front end's state lives in the model's state struct (fields ``fe_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..integer.frontend import IntFrontEnd
from ..integer.frontend_bounds import check as bounds_check
from ..integer.frontend_ref import bit_reverse
from .plan import ConstArray, StateField

FRONTEND_RUNTIME = "delrec_frontend.h"
PARAMS_BYTES = 19 * 4 + 9 * 4  # sizeof(delrec_fe_params) on a 32-bit target: 19 words and 9 pointers


@dataclass(frozen=True)
class FrontendPlan:
    sample_rate: int
    hop: int
    frame: int
    half: int
    stages: int
    channels: int
    floor_init: int
    max_count: int
    substeps: int
    params: tuple[tuple[str, int], ...]  # the scalar fields of delrec_fe_params, in declaration order
    tables: tuple[ConstArray, ...]
    state: tuple[StateField, ...]
    describe: str

    @property
    def hop_us(self) -> int:
        return self.hop * 1_000_000 // self.sample_rate

    @property
    def table_bytes(self) -> int:
        return sum(t.nbytes for t in self.tables)

    @property
    def state_bytes(self) -> int:
        return sum(f.nbytes for f in self.state)

    @property
    def scratch_bytes(self) -> int:
        """Stack of one bin: the FFT's real and imaginary parts, the energies, logs and encoder inputs."""
        return 2 * 4 * self.half + 8 * self.channels + 2 * 4 * self.channels


def frontend_plan(fe: IntFrontEnd) -> FrontendPlan:
    """The plan of ``fe``; ``ValueError`` (one line) if a register could overflow for some int16 input."""
    bounds_check(fe)
    n, m, c = fe.frame, fe.half, fe.n_channels
    tables = (
        ConstArray("fe_window", "int16_t", fe.window.astype(np.int64), f"front end: Hann window, Q15 [{n}]"),
        ConstArray("fe_cos", "int16_t", fe.cos.astype(np.int64), f"front end: Q14 cos(2 pi k / {n}), k = 0..{m}"),
        ConstArray("fe_sin", "int16_t", fe.sin.astype(np.int64), f"front end: Q14 sin(2 pi k / {n}), k = 0..{m}"),
        ConstArray("fe_bitrev", "uint16_t", bit_reverse(m), f"front end: bit-reversal permutation of 0..{m - 1}"),
        ConstArray("fe_shifts", "uint8_t", np.asarray(fe.fft_shifts, dtype=np.int64),
                   f"front end: rounded shift after each of the {fe.stages} FFT stages"),
        ConstArray("fe_chan", "int16_t", fe.chan.astype(np.int64),
                   f"front end: channel whose rising edge holds bin k (-1: none), k = 0..{m}"),
        ConstArray("fe_weight", "int16_t", fe.weight.astype(np.int64),
                   "front end: that channel's weight of bin k (2^12 = 1); channel - 1 gets the rest"),
        ConstArray("fe_log", "int16_t", fe.log_table.astype(np.int64),
                   f"front end: log2(1 + i / 32) in Q{fe.log_frac}, i = 0..32"),
        # pool_bins 1 reads no entry of it: one 0 keeps the array non-empty for C
        ConstArray("fe_logadd", "uint8_t", fe.logadd_table.astype(np.int64) if fe.pool_bins == 2 else np.zeros(1, np.int64),
                   f"front end: log2(1 + 2^(-2j / 2^{fe.log_frac})) in Q{fe.log_frac}, the log-add of two bins"
                   if fe.pool_bins == 2 else "front end: unused (pool_bins 1)"),
    )
    state = (
        StateField("fe_ring", "int16_t", n, f"front end: the last {n} samples, sample g at slot g mod {n}"),
        StateField("fe_floor", "int32_t", c, "front end: noise floor per channel, Q(log_frac + floor_frac)"),
        StateField("fe_v", "int32_t", c, "front end: encoder membranes, 0..threshold - 1"),
        StateField("fe_prev", "int16_t", c, "front end: the last bin's log2 energy per channel, Q(log_frac) "
                   "(pooling; 0 after a reset)"),
        StateField("fe_peak", "int32_t", 0, "front end: peak tracker, Q(log_frac + floor_frac)"),
        StateField("fe_pos", "uint32_t", 0, f"front end: ring slot the next sample goes to, 0..{n - 1}"),
        StateField("fe_fill", "uint32_t", 0, f"front end: samples of the current bin so far, 0..{fe.hop - 1}"),
        StateField("fe_refractory", "uint8_t", c, "front end: encoder refractory sub-steps left"),
        StateField("fe_counts", "uint8_t", c, "front end: spike counts of the last completed bin"),
    )
    params = (
        ("frame", n), ("half", m), ("hop", fe.hop), ("stages", fe.stages), ("channels", c),
        ("log_frac", fe.log_frac), ("floor_frac", fe.floor_frac), ("floor_rise_shift", fe.floor_rise_shift),
        ("floor_fall_shift", fe.floor_fall_shift), ("peak_fall_shift", fe.peak_fall_shift),
        ("floor_min", fe.floor_min), ("offset", fe.offset), ("depth", fe.depth), ("threshold", fe.threshold),
        ("substeps", fe.substeps), ("refractory", fe.refractory), ("leak_shift", fe.leak_shift),
        ("pool_bins", fe.pool_bins), ("logadd_last", max(fe.logadd_table.size - 1, 0)),
    )
    describe = (f"{fe.sample_rate} Hz int16 PCM -> {c} channels, {fe.hop}-sample hop, {n}-point frames "
                f"(Hann, radix-2 FFT), mel filterbank, log2{', pooled over 2 bins' if fe.pool_bins == 2 else ''}, "
                f"noise floor and peak gain control, LIF encoder "
                f"({fe.substeps} sub-steps, refractory {fe.refractory}) -> 0..{fe.max_count} spikes per bin")
    return FrontendPlan(
        sample_rate=fe.sample_rate, hop=fe.hop, frame=n, half=m, stages=fe.stages, channels=c,
        floor_init=fe.floor_init, max_count=fe.max_count, substeps=fe.substeps,
        params=tuple((k, int(v)) for k, v in params), tables=tables, state=state, describe=describe,
    )
