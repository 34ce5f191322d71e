"""What the generated folder promises beyond the per-step values: partly used spike words in every kernel, the
score saturating exactly as the spec says, a garbage state refused, every accepted prefix compiling (as C and
from C++), no library symbol beyond memset/memcpy, and the CMake library target for the host and a Cortex-M4.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from intnet_builders import layered_network, tiny_network
from numpy.testing import assert_array_equal

from codegen.generator.emit import generate, write_folder
from codegen.generator.plan import check_prefix
from codegen.integer import refmodel as rm
from codegen.integer.network import VARIANTS
from codegen.verify.hostbuild import STRICT_FLAGS, BuildOptions, build, build_host_model, compiler, sanitizer_env

REPO = Path(__file__).resolve().parents[3]
WIDTHS = (33, 31, 65, 63, 100, 257)  # each layer reads the previous one's partly used last word


def _inputs(n_in: int, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (steps, n_in)) * (rng.random((steps, n_in)) < 0.6)).astype(np.uint8)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("variant", [None, *VARIANTS])
def test_partly_used_spike_words_in_every_kernel(variant, bits):
    """Layers of 33, 31, 65, 63, 100 and 257 neurons (last spike word partly used, in the input of the next
    layer, the delay ring and the readout), int8 and int16 weights, both kernel sets: every value equal to
    the reference after every step, and every layer spikes (the partial words carry bits)."""
    net = layered_network(variant, 5, WIDTHS, weight_bits=bits, seed=0)
    x = _inputs(5, 40, seed=1)
    want = rm.run(net, x, keep_trace=True)
    assert all(int(layer.spikes.sum()) > 0 for layer in want.trace.layers)
    plan, files = generate(net, "wide")
    for reference_kernels in (False, True):
        hm = build_host_model(plan, files, BuildOptions(reference_kernels=reference_kernels))
        got = hm.trace(hm.new_state(), x)
        for i, layer in enumerate(want.trace.layers):
            assert_array_equal(got.v[i], layer.v[0], err_msg=f"layer {i} membranes, reference={reference_kernels}")
            assert_array_equal(got.spikes[i], layer.spikes[0], err_msg=f"layer {i} spikes")
        assert_array_equal(got.u, want.trace.u[0])
        assert_array_equal(got.score, want.trace.score[0])


@pytest.mark.parametrize("start, bias, limit", [(2**63 - 25, 10, 2**63 - 1), (-(2**63) + 25, -10, -(2**63))])
def test_the_c_score_saturates_as_the_reference_does(start, bias, limit):
    """Scores preset near the int64 limits: C and reference step to the limit and stick there, identically."""
    import dataclasses

    net = tiny_network(None, n_in=2, n=3, seed=5)
    ro = dataclasses.replace(net.readout, weight=np.zeros_like(net.readout.weight), bias=np.full(3, bias, np.int32),
                             leak_mul=0)
    net = dataclasses.replace(net, readout=ro)
    x = np.zeros((4, 2), np.uint8)
    state = rm.initial_state(net)
    state.score[:] = start
    want = [rm.step(net, state, x[t : t + 1]).score[0].tolist() for t in range(4)]
    assert want[-1] == [limit] * 3 and want[0] == [start + bias] * 3
    hm = build_host_model(*generate(net, "sat"))
    c_state = hm.new_state()
    for k in range(3):
        c_state.score[k] = start
    assert_array_equal(hm.trace(c_state, x).score, np.array(want))


def test_a_corrupt_state_is_refused_and_left_alone():
    """A ring head outside the ring, a spike bit past the last neuron in a ring slot, a membrane outside its
    range: step returns ERR_STATE (-3) and changes nothing; after reset the same state steps normally."""
    import dataclasses

    net = layered_network("conv", 3, (33,), seed=2)
    net = dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], state_bits=12),))
    hm = build_host_model(*generate(net, "bad"))
    x = np.zeros(3, np.uint8)
    step = hm.lib.bad_step
    slots = rm.ring_length(net.layers[0].recurrence)
    corruptions = [
        lambda s: setattr(s, "head0", slots),
        lambda s: s.ring0.__setitem__(1, 1 << 1),  # slot 0, word 1: bit 33 of a 33-neuron layer
        lambda s: s.v0.__setitem__(5, 2047 + 1),  # 12-bit membrane
        lambda s: s.v0.__setitem__(5, -2048 - 1),
    ]
    for corrupt in corruptions:
        state = hm.new_state()
        corrupt(state)
        before = bytes(hm.ffi.buffer(state))
        assert step(state, hm.ffi.from_buffer("uint8_t[]", x), 3, hm.ffi.NULL, 0) == -3
        assert bytes(hm.ffi.buffer(state)) == before
        hm.reset(state)
        assert step(state, hm.ffi.from_buffer("uint8_t[]", x), 3, hm.ffi.NULL, 0) == 0


GARBAGE_SCRIPT = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location(sys.argv[1], sys.argv[2])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ffi, lib = mod.ffi, mod.lib
x = ffi.new("uint8_t[]", 3)
refused = 0
for trial in range(200):
    state = ffi.new("bad_state *")
    ffi.memmove(state, os.urandom(ffi.sizeof("bad_state")), ffi.sizeof("bad_state"))
    rc = lib.bad_step(state, x, 3, ffi.NULL, 0)
    assert rc in (0, -3), rc
    refused += rc == -3
    rc = lib.bad_step(state, x, 3, ffi.NULL, 0)  # a refused state stays refused; an accepted one keeps stepping
    assert rc in (0, -3), rc
print("refused", refused)
"""


def test_a_garbage_filled_state_under_asan():
    """200 states filled with random bytes (memory that was never reset) through the ASan/UBSan build: every
    step returns OK or ERR_STATE, and no access is out of bounds (a finding aborts the subprocess)."""
    import dataclasses

    net = layered_network("conv", 3, (33,), seed=2)
    net = dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], state_bits=12),))
    b = build(*generate(net, "bad"), BuildOptions(sanitize=True))
    proc = subprocess.run([sys.executable, "-c", GARBAGE_SCRIPT, b.module, str(b.path)], env=sanitizer_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    refused = int(proc.stdout.split()[-1])
    assert refused > 150, proc.stdout  # random heads are almost always outside a ring of a few slots


# ----------------------------------------------------------------------------------------- prefixes


def _compile_folder(files: dict[str, str], prefix: str, tmp: Path) -> None:
    write_folder(files, tmp)
    c = subprocess.run([compiler(), *STRICT_FLAGS, "-O1", "-I", str(tmp), "-c", str(tmp / f"{prefix}.c"), "-o",
                        str(tmp / "m.o")], capture_output=True, text=True)  # fmt: skip
    assert c.returncode == 0, f"{prefix}: {c.stderr[-2000:]}"
    (tmp / "use.cpp").write_text(f'#include "{prefix}.h"\n#include "delrec_runtime.h"\n'
                                 f"int main() {{ {prefix}_state s; return {prefix}_reset(&s); }}\n")
    cpp = subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp), "-c",
                          str(tmp / "use.cpp"), "-o", str(tmp / "use.o")], capture_output=True, text=True)  # fmt: skip
    assert cpp.returncode == 0, f"{prefix} from C++: {cpp.stderr[-2000:]}"


TRICKY_PREFIXES = ["model", "m", "INT8", "int8", "size", "NULL", "main", "errno_x", "assert1", "signals", "time1",
                   "uint32_t", "memset", "Model_2", "EOF", "stdio_x", "exit", "abs", "true1", "x" * 22]


def _accepted(prefix: str) -> bool:
    try:
        check_prefix(prefix)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def prefix_network():
    return tiny_network("conv", n_in=3, n=5, n_layers=2, seed=4)


def test_tricky_prefixes_compile_as_c_and_from_cpp(prefix_network, tmp_path):
    for prefix in TRICKY_PREFIXES:
        assert _accepted(prefix), prefix
        folder = tmp_path / prefix
        folder.mkdir()
        _compile_folder(generate(prefix_network, prefix)[1], prefix, folder)


@settings(max_examples=25, deadline=None)
@given(prefix=st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,21}", fullmatch=True))
def test_every_prefix_the_check_accepts_compiles(prefix_network, prefix):
    if not _accepted(prefix):
        return  # refused with a one-line reason: nothing is generated
    with tempfile.TemporaryDirectory() as tmp:
        _compile_folder(generate(prefix_network, prefix)[1], prefix, Path(tmp))


# --------------------------------------------------------------------------------- symbols and CMake

CROSS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"],
}
# what gcc may call on its own on a core without 64-bit multiplies and shifts: libgcc, part of the compiler
LIBGCC_HELPERS = {"__aeabi_lmul", "__aeabi_llsl", "__aeabi_llsr", "__aeabi_lasr", "__aeabi_uidiv", "__aeabi_idiv",
                  "__aeabi_uidivmod", "__aeabi_idivmod", "__ctzsi2", "__clzsi2"}
ALLOWED = {"memset", "memcpy", "__aeabi_memset", "__aeabi_memset4", "__aeabi_memcpy", "__aeabi_memcpy4",
           "__aeabi_memclr", "__aeabi_memclr4"}


def _undefined(nm: str, obj: Path) -> set[str]:
    out = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("where", ["host", "cortex-m4", "cortex-m0plus"])
@pytest.mark.parametrize("variant", [None, *VARIANTS])
def test_the_model_object_needs_nothing_beyond_memset_and_memcpy(tmp_path, where, variant):
    """nm -u of the compiled model (both kernel sets): only memset/memcpy (and, on the Cortex-M0+ with no 64-bit
    multiply, libgcc's arithmetic helpers), never malloc, printf or anything else from a C library."""
    net = tiny_network(variant, n_in=4, n=37, n_layers=2, seed=6)
    plan, files = generate(net, "sym")
    write_folder(files, tmp_path)
    if where == "host":
        cc, nm, flags = compiler(), "nm", ["-fPIC"]
    else:
        cc, nm, flags = "arm-none-eabi-gcc", "arm-none-eabi-nm", CROSS[where]
    assert shutil.which(cc) and shutil.which(nm), f"{cc} / {nm} missing: scripts/install-system-deps.sh installs them"
    for extra in ([], ["-DDELREC_REFERENCE_KERNELS"]):
        obj = tmp_path / "sym.o"
        subprocess.run([cc, *STRICT_FLAGS, "-O2", *flags, *extra, "-I", str(tmp_path), "-c", str(tmp_path / "sym.c"),
                        "-o", str(obj)], check=True)  # fmt: skip
        undefined = _undefined(nm, obj)
        allowed = ALLOWED | (LIBGCC_HELPERS if where == "cortex-m0plus" else set())
        assert undefined <= allowed, f"{where} {extra}: {sorted(undefined - allowed)}"
        defined = subprocess.run([nm, "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
        assert " T sym_step" in defined and " T sym_classify" in defined  # nm read the real object


CMAKE_MAIN = r"""
#include <stdio.h>
#include "cm.h"
int main(void)
{
    static cm_state s;
    uint8_t x[CM_N_INPUTS] = {0};
    int32_t u[CM_N_CLASSES];
    int t;
    if (cm_reset(&s) != CM_OK) return 1;
    for (t = 0; t < 5; t++) if (cm_step(&s, x, CM_N_INPUTS, u, CM_N_CLASSES) != CM_OK) return 1;
    printf("class %d\n", cm_predict(&s));
    return 0;
}
"""


@pytest.mark.parametrize("reference_kernels", [False, True])
def test_cmake_builds_the_library_for_the_host_and_a_cortex_m4(tmp_path, reference_kernels):
    """The generated CMakeLists.txt: a host build linked into a program that runs and prints the reference's
    class, and a cross build with firmware/cmake/cortex-m4.cmake whose archive defines the API for Thumb."""
    assert shutil.which("cmake"), "cmake missing: scripts/install-system-deps.sh installs it"
    net = tiny_network("dense", n_in=3, n=6, n_layers=2, seed=8)
    src = tmp_path / "cm"
    src.mkdir()
    write_folder(generate(net, "cm")[1], src)
    option = f"-DCM_REFERENCE_KERNELS={'ON' if reference_kernels else 'OFF'}"
    host = tmp_path / "host"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.c").write_text(CMAKE_MAIN)
    (tmp_path / "app" / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
        f"add_subdirectory({src} cm)\nadd_executable(app main.c)\ntarget_link_libraries(app PRIVATE cm)\n")
    for cmd in (["cmake", "-S", str(tmp_path / "app"), "-B", str(host), option], ["cmake", "--build", str(host)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ran = subprocess.run([str(host / "app")], capture_output=True, text=True, check=True)
    want = rm.run(net, np.zeros((5, 3), np.int64)).predictions[0]
    assert ran.stdout.strip() == f"class {want}"

    cross = tmp_path / "m4"
    toolchain = REPO / "firmware" / "cmake" / "cortex-m4.cmake"
    for cmd in (["cmake", "-S", str(src), "-B", str(cross), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", option],
                ["cmake", "--build", str(cross)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    archive = cross / "libcm.a"
    symbols = subprocess.run(["arm-none-eabi-nm", str(archive)], capture_output=True, text=True, check=True).stdout
    assert " T cm_step" in symbols and " T cm_reset" in symbols
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(archive)], capture_output=True, text=True).stdout
    assert "Cortex-M4" in attrs or "v7E-M" in attrs, attrs[:500]
