"""The per-region profile: region markers, the accounting of QEMU's execution log, and real runs on emulated cores.

The accounting is checked exactly on a hand-written log (every rule of the module docstring: blocks listed once
and run many times, instructions the disassembler prints as halfwords, blocks QEMU stopped before running,
blocks rewound at an I/O access, library code counted in the calling region, application code not profiled);
the real runs check that the profile covers every step instruction: its total per step plus the timer reads
equals the SysTick measurement within one tick.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from intnet_builders import tiny_network

from codegen.generator.emit import generate
from codegen.verify import firmware_profile as fp
from codegen.verify import firmware_run as fw
from pytrain.cli import main

SOURCE = """int step(void)
{
    /* region: layer 0 spikes */
    a();
    b();
    /* region: layer 0 LIF */
    c();
    /* region end */
    return 0;
}
/* region: readout update */
d();
"""


def test_source_regions_are_line_ranges_between_markers():
    assert fp.source_regions(SOURCE) == [(4, 5, "layer 0 spikes"), (7, 7, "layer 0 LIF"), (12, 12, "readout update")]
    assert fp.region_names(SOURCE) == ["layer 0 spikes", "layer 0 LIF", "readout update"]
    assert fp.source_regions("no markers\n") == []


MODEL, LIBRARY, APP = 0x100, 0x200, 0x300
CODE = fp.CodeMap(
    static={0x100: "A", 0x102: "A", 0x106: "B", 0x10A: "B"},
    functions=[(MODEL, 0x10C, "model"), (LIBRARY, 0x210, "dynamic"), (APP, 0x310, "outside")],
    entries={"model_step": MODEL},
)

LOG = """----------------
IN: model_step
0x00000100:  b508       push     {r3, lr}
0x00000102:  f04f 23e0  mov.w    r3, #-0x1fff2000
0x00000106:  fe71       .byte 0x71, 0xfe
0x00000108:  0f01 4770  vcge.f32 d30, d0, d29


Trace 0: 0x7f00000100 [00800400/00000100/00000000/ff020200] model_step
----------------
IN: memset
0x00000200:  4603       mov      r3, r0
0x00000202:  3a01       subs     r2, #1
0x00000204:  4770       bx       lr

Trace 0: 0x7f00000200 [00800400/00000200/00000000/ff020200] memset
Trace 0: 0x7f00000200 [00800400/00000200/00000000/ff020200] memset
----------------
IN: main
0x00000300:  2000       movs     r0, #0

Trace 0: 0x7f00000300 [00800400/00000300/00000000/ff020200] main
Trace 0: 0x7f00000200 [00800400/00000200/00000000/ff020200] memset
Trace 0: 0x7f00000100 [00800400/00000100/00000000/ff020200] model_step
Stopped execution of TB chain before 0x7f00000100 [00000100] model_step
Trace 0: 0x7f00000100 [00800400/00000100/00000000/ff020200] model_step
cpu_io_recompile: rewound execution of TB to 00000106
Trace 0: 0x7f00000200 [00800400/00000200/00000000/ff020200] memset
"""


def test_log_accounting_is_exact():
    """First run of the model block: 4 instructions (the undecoded 32-bit MVE instruction counts once, although the
    disassembler joins its second halfword with the next 16-bit instruction), 2 in A and
    2 in B, then memset twice in B's context (6); main switches profiling off, so the next memset is not counted;
    a stopped block counts nothing; a block rewound at 0x106 counts its 2 instructions before it (both A), and the
    memset it then calls is counted in A."""
    parser = fp._Parser(CODE)
    for line in LOG.splitlines(keepends=True):
        parser.feed(line)
    assert dict(parser.counts.regions) == {"A": 2 + 2 + 3, "B": 2 + 6}
    assert parser.counts.entries["model_step"] == 2  # the stopped entry is taken back


def test_a_block_run_before_it_was_listed_is_an_error():
    parser = fp._Parser(CODE)
    with pytest.raises(ValueError, match="ran before it was listed"):
        parser.feed("Trace 0: 0x7f00000100 [00800400/00000100/00000000/ff020200] model_step\n")


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55", "cortex-m0plus"])
def test_profile_covers_every_instruction_of_the_step(target):
    """On a real image the regions of the profile add up to the SysTick count of a step minus the timer reads
    around it (a constant per core: 27.5 instructions on the MPS2/MPS3 boards, 34 on the micro:bit, measured
    here as the difference), within one SysTick tick; every region of the plan appears, with its events."""
    net = tiny_network("conv", n_in=8, n=12, n_layers=2, seed=3)
    plan, files = generate(net, "tiny")
    x = np.random.default_rng(0).integers(0, 4, (2, 30, 8)).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        r = fw.target_parity(net, plan, files, x, target, Path(tmp), profile=True)
    assert r.bit_exact == 2
    p = r.profile
    names = [row["name"] for row in p["regions"]]
    assert [n for n in names if n != "other"] == [n for n in plan.regions if n in names]
    assert {"layer 0 input counts", "layer 1 spikes", "layer 1 LIF", "readout update"} <= set(names)
    assert all(row["insns_per_step"] > 0 for row in p["regions"])
    per_event = {row["name"]: row["insns_per_event"] for row in p["regions"]}
    assert per_event["layer 0 input counts"] > 0 and per_event["layer 0 LIF"] is None
    assert p["total_per_step"] == pytest.approx(sum(row["insns_per_step"] for row in p["regions"]))
    tick = float(fw.target_info(target)["insns_per_tick_num"]) / float(fw.target_info(target)["insns_per_tick_den"])
    overhead = r.insns_per_step - p["total_per_step"]
    assert 20 <= overhead <= 40 + tick, f"SysTick {r.insns_per_step} vs profile {p['total_per_step']}"


def test_report_profile_option(quantized_edge, tmp_path, capsys):
    _, run = quantized_edge
    out_json = tmp_path / "r.json"
    assert main(["firmware", "report", "--targets", "cortex-m4,cortex-m55", "--model", str(run), "--samples", "2",
                 "--profile", "--out", str(tmp_path / "w"), "--json", str(out_json)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "profile: instructions per step by region" in text and "layer 1 LIF" in text
    assert "accumulation kernels" in text and "SysTick per step" in text
    rows = json.loads(out_json.read_text())
    assert all(r["profile"]["regions"] for r in rows)
