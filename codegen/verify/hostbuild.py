"""Build generated C on the host with cffi and run it from Python.

The model sources are compiled by the host C compiler with the project's strict flags
(``-std=c99 -Wall -Wextra -Wconversion -Wshadow -Werror``) into an object file, which cffi links into an
extension module together with a small host-only trace helper. So the warnings apply to the generated
code and not to cffi's own wrapper. Options add ``-fsanitize=address,undefined`` (such a module loads only
in a process started with the ASan runtime preloaded: see :func:`sanitizer_env`) or select the reference
kernels (``-DDELREC_REFERENCE_KERNELS``).

Builds are cached by the hash of their sources and flags under ``$DELREC_EDGE_BUILD_CACHE``
(default ``~/.cache/delrec-edge/host-builds``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import UserError
from ..generator.emit import cdef, render_template, write_folder
from ..generator.plan import Plan
from ..integer.network import MAX_COUNT

TEMPLATES = ("codegen.verify", "codegen.generator")  # harness templates first, then the generator's

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Wshadow", "-Werror")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")


@dataclass(frozen=True)
class BuildOptions:
    optimize: str = "-O2"
    reference_kernels: bool = False
    sanitize: bool = False
    portable_kernels: bool = False  # the plain event kernels with 32-bit sums (-DDELREC_PORTABLE_KERNELS)
    native: bool = False  # -march=native: the vector extensions of this host (benchmarks, not parity)

    @property
    def compile_flags(self) -> tuple[str, ...]:
        flags = [*STRICT_FLAGS, self.optimize, "-fPIC"]
        if self.reference_kernels:
            flags.append("-DDELREC_REFERENCE_KERNELS")
        if self.portable_kernels:
            flags.append("-DDELREC_PORTABLE_KERNELS")
        if self.native:
            flags.append("-march=native")
        if self.sanitize:
            flags += SANITIZE_FLAGS
        return tuple(flags)

    @property
    def kernels(self) -> str:
        """The kernel set: "reference", "portable" (event kernels, 32-bit sums) or "packed" (the default)."""
        return "reference" if self.reference_kernels else "portable" if self.portable_kernels else "packed"

    @property
    def label(self) -> str:
        return "-".join([self.optimize.lstrip("-"), self.kernels] + (["native"] if self.native else [])
                        + (["asan"] if self.sanitize else []))


def cache_root() -> Path:
    return Path(os.environ.get("DELREC_EDGE_BUILD_CACHE") or "~/.cache/delrec-edge/host-builds").expanduser()


def compiler() -> str:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    exe = cc.split()[0]
    if shutil.which(exe) is None:
        raise UserError(f"no C compiler found ({exe!r}); install one, e.g. 'apt-get install -y gcc'")
    return exe


def sanitizer_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a Python subprocess that loads a sanitizer build: the ASan runtime preloaded."""
    env = dict(os.environ if base is None else base)
    libasan = subprocess.run(
        [compiler(), "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env["LD_PRELOAD"] = libasan
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def _trace_source(plan: Plan) -> str:
    offsets, total = [], 0
    for layer in plan.layers:
        offsets.append(total)
        total += layer.n
    return render_template("host_trace.c.j2", plan, TEMPLATES, offsets=offsets, total_n=total)


def _trace_cdef(plan: Plan) -> str:
    p = plan.prefix
    out = (
        f"static int {p}_host_trace({p}_state *state, const uint8_t *inputs, size_t n_steps, int32_t *v_out,\n"
        "    uint8_t *spikes_out, uint32_t *head_out, int32_t *u_out, int64_t *score_out);\n"
    )
    if plan.frontend is not None:
        out += (
            f"static int {p}_host_hear({p}_state *state, const int16_t *pcm, const uint32_t *chunks, size_t n_chunks,\n"
            "    uint8_t *counts, size_t max_bins, int16_t *ring_out, uint32_t *index_out, int32_t *floor_out,\n"
            "    int32_t *peak_out, int32_t *v_out, uint8_t *refractory_out, uint8_t *last_out, int16_t *prev_out);\n"
            f"static int {p}_host_listen({p}_state *state, const int16_t *pcm, const uint32_t *chunks, size_t n_chunks,\n"
            "    size_t max_steps, uint8_t *counts_out, int32_t *floor_out, int32_t *v_out, int32_t *u_out,\n"
            "    int64_t *score_out);\n"
        )
    return out


@dataclass(frozen=True)
class Build:
    """A compiled extension: its path and module name (load with :func:`load_module`)."""

    path: Path
    module: str
    plan: Plan
    options: BuildOptions


def build(plan: Plan, files: dict[str, str], options: BuildOptions = BuildOptions()) -> Build:
    """Compile ``files`` (from :func:`codegen.generator.emit.render`) into a cffi extension; cached by content."""
    import cffi  # imported here: only builds need it

    cc = compiler()
    preamble = f'#include <string.h>\n#include "{plan.prefix}.h"\n#include "delrec_runtime.h"\n' + _trace_source(plan)
    if plan.frontend is not None:
        preamble += render_template("host_audio.c.j2", plan, TEMPLATES)
    key = hashlib.sha256()
    for name in sorted(files):
        key.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    key.update(repr((options.compile_flags, preamble, cc, sys.version)).encode())
    digest = key.hexdigest()[:20]
    module = f"_delrec_host_{digest}"
    out = cache_root() / f"{plan.prefix}-{options.label}-{digest}"
    built = list(out.glob(f"{module}*.so")) if out.is_dir() else []
    if built:
        return Build(built[0], module, plan, options)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)  # mkdtemp makes it private; a shared cache should be readable
    try:
        src = work / "src"
        src.mkdir()
        write_folder(files, src)
        objects = []
        for name in sorted(n for n in files if n.endswith(".c")):  # the model, and its front end if it has one
            obj = work / (name[:-2] + ".o")
            proc = subprocess.run(
                [cc, *options.compile_flags, "-I", str(src), "-c", str(src / name), "-o", str(obj)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"compiling the generated C failed:\n{proc.stderr}")
            objects.append(str(obj))
        ffi = cffi.FFI()
        ffi.cdef(cdef(plan) + "\n" + _trace_cdef(plan))
        # Python's CFLAGS carry -fwrapv, which would hide signed overflow in the wrapper and trace helper
        sanitize = [*SANITIZE_FLAGS, "-fno-wrapv"] if options.sanitize else []
        ffi.set_source(
            module, preamble, include_dirs=[str(src)], extra_objects=objects,
            extra_compile_args=[options.optimize, *sanitize], extra_link_args=sanitize,
        )
        so = Path(ffi.compile(tmpdir=str(work / "cffi"), verbose=False))
        final = work / so.name
        shutil.move(str(so), final)
        shutil.rmtree(work / "cffi", ignore_errors=True)
        try:
            os.replace(work, out)
        except OSError:  # another process finished the same build first
            shutil.rmtree(work, ignore_errors=True)
        return Build(next(out.glob(f"{module}*.so")), module, plan, options)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def load_module(b: Build):
    """Import the extension of ``b`` (once per process) and return it (``.ffi``, ``.lib``)."""
    if b.module in sys.modules:
        return sys.modules[b.module]
    spec = importlib.util.spec_from_file_location(b.module, b.path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[b.module] = mod
    return mod


@dataclass(frozen=True)
class Trace:
    """Per-step values after every step: ``v``/``spikes`` (T, N) per layer, ``head`` (T, layers), ``u``/``score`` (T, K)."""

    v: tuple[np.ndarray, ...]
    spikes: tuple[np.ndarray, ...]
    head: np.ndarray
    u: np.ndarray
    score: np.ndarray


def _ok(rc: int, what: str) -> None:
    if rc < 0:
        raise RuntimeError(f"generated C: {what} returned error code {rc}")


@dataclass(frozen=True)
class HearTrace:
    """:meth:`HostModel.hear`: the counts of every completed bin (nb, C) and the front end's complete state after
    every piece of input: ``ring`` (P, N), ``pos``/``fill``/``peak`` (P,), ``floor``/``v``/``refractory``/``counts``/
    ``prev`` (P, C)."""

    bins: np.ndarray
    ring: np.ndarray
    pos: np.ndarray
    fill: np.ndarray
    floor: np.ndarray
    peak: np.ndarray
    v: np.ndarray
    refractory: np.ndarray
    counts: np.ndarray
    prev: np.ndarray


@dataclass(frozen=True)
class ListenTrace:
    """:meth:`HostModel.listen`: after every network step, the bin's ``counts``, the front end's ``floor`` and
    ``v`` (S, C), the readout ``u`` and the ``score`` (S, K)."""

    counts: np.ndarray
    floor: np.ndarray
    v: np.ndarray
    u: np.ndarray
    score: np.ndarray


def _chunks(n: int, chunks) -> np.ndarray:
    """Piece sizes (uint32) covering ``n`` samples: ``chunks`` itself (must sum to n), or one piece."""
    sizes = np.array([n] if chunks is None else list(chunks), dtype=np.int64)
    if sizes.size == 0 or sizes.min() < 0 or int(sizes.sum()) != n:
        raise ValueError(f"chunk sizes must be >= 0 and sum to the {n} samples")
    return np.ascontiguousarray(sizes, dtype=np.uint32)


def _pcm16(pcm) -> np.ndarray:
    a = np.asarray(pcm)
    if a.ndim != 1 or a.dtype.kind not in "iu" or (a.size and (a.min() < -32768 or a.max() > 32767)):
        raise ValueError("pcm must be a 1-D array of int16 values")
    return np.ascontiguousarray(a, dtype=np.int16)


class HostModel:
    """The generated C of one model, loaded in this process."""

    def __init__(self, b: Build):
        self.build = b
        self.plan = b.plan
        mod = load_module(b)
        self.ffi, self.lib = mod.ffi, mod.lib
        self._fn = {name: getattr(self.lib, f"{self.plan.prefix}_{name}") for name in ("reset", "step", "classify", "predict")}
        self._trace = getattr(self.lib, f"{self.plan.prefix}_host_trace")

    def new_state(self):
        """A zeroed state struct owned by Python."""
        state = self.ffi.new(f"{self.plan.prefix}_state *")
        self.reset(state)
        return state

    def reset(self, state) -> None:
        _ok(self._fn["reset"](state), "reset")

    def _counts(self, x, ndim: int) -> np.ndarray:
        a = np.ascontiguousarray(x)
        if a.ndim != ndim or a.shape[-1] != self.plan.n_inputs:
            raise ValueError(f"inputs must have {ndim} dims and {self.plan.n_inputs} channels, got {a.shape}")
        if a.size and (a.min() < 0 or a.max() > MAX_COUNT):
            raise ValueError(f"input counts must be in 0..{MAX_COUNT}")
        return np.ascontiguousarray(a, dtype=np.uint8)

    def step(self, state, x) -> np.ndarray:
        """One step on counts ``x`` (n_inputs,); returns the readout ``u`` (K,) int32."""
        counts = self._counts(x, 1)
        u = np.zeros(self.plan.n_classes, dtype=np.int32)
        rc = self._fn["step"](state, self.ffi.from_buffer("uint8_t[]", counts), counts.size,
                              self.ffi.from_buffer("int32_t[]", u), u.size)
        _ok(rc, "step")
        return u

    def classify(self, inputs) -> tuple[int, np.ndarray]:
        """Class and scores (K,) int64 of one sample ``inputs`` (T, n_inputs) from a fresh state."""
        counts = self._counts(inputs, 2)
        scores = np.zeros(self.plan.n_classes, dtype=np.int64)
        state = self.ffi.new(f"{self.plan.prefix}_state *")
        cls = self._fn["classify"](state, self.ffi.from_buffer("uint8_t[]", counts), counts.shape[0], self.plan.n_inputs,
                                   self.ffi.from_buffer("int64_t[]", scores), scores.size)
        _ok(cls, "classify")
        return int(cls), scores

    def trace(self, state, inputs) -> Trace:
        """Run ``inputs`` (T, n_inputs) from ``state`` (continuing it) and record every step."""
        counts = self._counts(inputs, 2)
        t = counts.shape[0]
        total = sum(layer.n for layer in self.plan.layers)
        k = self.plan.n_classes
        v = np.zeros((t, total), np.int32)
        spikes = np.zeros((t, total), np.uint8)
        head = np.zeros((t, len(self.plan.layers)), np.uint32)
        u = np.zeros((t, k), np.int32)
        score = np.zeros((t, k), np.int64)
        buf = self.ffi.from_buffer
        rc = self._trace(state, buf("uint8_t[]", counts), t, buf("int32_t[]", v), buf("uint8_t[]", spikes),
                         buf("uint32_t[]", head), buf("int32_t[]", u), buf("int64_t[]", score))
        _ok(rc, "trace")
        bounds = np.cumsum([0] + [layer.n for layer in self.plan.layers])
        split = lambda a: tuple(a[:, bounds[i] : bounds[i + 1]] for i in range(len(self.plan.layers)))  # noqa: E731
        return Trace(split(v), split(spikes), head, u, score)

    def hear(self, state, pcm, chunks=None) -> HearTrace:
        """Feed ``pcm`` (int16 values) through ``<prefix>_hear`` in pieces ``chunks`` (sizes, default one piece),
        from ``state`` (continuing it)."""
        fe = self.plan.frontend
        x = _pcm16(pcm)
        sizes = _chunks(x.size, chunks)
        p, c, n = sizes.size, fe.channels, fe.frame
        max_bins = (fe.hop + x.size) // fe.hop
        bins = np.zeros((max_bins, c), np.uint8)
        ring = np.zeros((p, n), np.int16)
        index = np.zeros((p, 2), np.uint32)
        floor, v = np.zeros((p, c), np.int32), np.zeros((p, c), np.int32)
        peak = np.zeros(p, np.int32)
        refractory, last = np.zeros((p, c), np.uint8), np.zeros((p, c), np.uint8)
        prev = np.zeros((p, c), np.int16)
        buf = self.ffi.from_buffer
        rc = getattr(self.lib, f"{self.plan.prefix}_host_hear")(
            state, buf("int16_t[]", x), buf("uint32_t[]", sizes), p, buf("uint8_t[]", bins), max_bins,
            buf("int16_t[]", ring), buf("uint32_t[]", index), buf("int32_t[]", floor), buf("int32_t[]", peak),
            buf("int32_t[]", v), buf("uint8_t[]", refractory), buf("uint8_t[]", last), buf("int16_t[]", prev))
        _ok(rc, "hear")
        return HearTrace(bins[:rc], ring, index[:, 0], index[:, 1], floor, peak, v, refractory, last, prev)

    def listen(self, state, pcm, chunks=None) -> ListenTrace:
        """Feed ``pcm`` through ``<prefix>_listen`` in pieces ``chunks`` from ``state``; record every step."""
        fe = self.plan.frontend
        x = _pcm16(pcm)
        sizes = _chunks(x.size, chunks)
        c, k = fe.channels, self.plan.n_classes
        max_steps = (fe.hop + x.size) // fe.hop
        counts = np.zeros((max_steps, c), np.uint8)
        floor, v = np.zeros((max_steps, c), np.int32), np.zeros((max_steps, c), np.int32)
        u, score = np.zeros((max_steps, k), np.int32), np.zeros((max_steps, k), np.int64)
        buf = self.ffi.from_buffer
        rc = getattr(self.lib, f"{self.plan.prefix}_host_listen")(
            state, buf("int16_t[]", x), buf("uint32_t[]", sizes), sizes.size, max_steps, buf("uint8_t[]", counts),
            buf("int32_t[]", floor), buf("int32_t[]", v), buf("int32_t[]", u), buf("int64_t[]", score))
        _ok(rc, "listen")
        return ListenTrace(counts[:rc], floor[:rc], v[:rc], u[:rc], score[:rc])


def build_host_model(plan: Plan, files: dict[str, str], options: BuildOptions = BuildOptions()) -> HostModel:
    return HostModel(build(plan, files, options))
