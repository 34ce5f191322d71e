"""Parity on a target: the firmware app's configuration, what it must print, and how its output is read.

The parity app (``firmware/app/parity/main.c``) runs embedded test samples through the generated C and
prints, per sample, the predicted class, a hash of the complete model state folded after every step, the
final readout, the class scores and SysTick counts. This module writes the app's ``app_config.h``,
recomputes every expected value from the integer reference model (:mod:`codegen.integer.refmodel`), parses
the app's output and compares the two exactly with :func:`codegen.verify.compare.compare`.

The state hash folds 32-bit words with FNV-1a, ``h = (h ^ w) * 0x100000001b3 mod 2^64`` from
``0xcbf29ce484222325``; after each step it takes, per layer, the membranes (as int32), the spike words,
the ring words and the ring head, then the readout state ``u`` and each score (low word, then high word).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..generator.emit import c_array_body, render_template
from ..generator.plan import Plan, words
from ..integer import refmodel
from ..integer.network import MAX_COUNT, IntNetwork
from .compare import Comparison, compare

TEMPLATES = ("codegen.verify", "codegen.generator")  # harness templates first, then the generator's

FNV_INIT = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
PROTOCOL = "delrec-parity 2"


def app_config(plan: Plan, samples: np.ndarray) -> str:
    """``app_config.h`` for ``samples`` (N, T, n_inputs) counts 0..MAX_COUNT."""
    x = np.asarray(samples)
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[2] != plan.n_inputs:
        raise ValueError(f"samples must be (N >= 1, T, {plan.n_inputs}), got {x.shape}")
    if x.size and (x.min() < 0 or x.max() > MAX_COUNT):
        raise ValueError(f"sample counts must be in 0..{MAX_COUNT}")
    bodies = ["\n".join("    " + line for line in c_array_body(s.reshape(-1), per_line=32).splitlines()) for s in x]
    return render_template("app_config.h.j2", plan, TEMPLATES, samples=bodies, n_samples=x.shape[0], n_steps=x.shape[1])


def _pack(bits: np.ndarray) -> np.ndarray:
    """(B, N) 0/1 -> (B, words(N)) uint64 holding the uint32 spike words (bit j of word j // 32)."""
    b, n = bits.shape
    out = np.zeros((b, words(n)), dtype=np.uint64)
    for j in range(n):
        out[:, j // 32] |= bits[:, j].astype(np.uint64) << np.uint64(j % 32)
    return out


def _u32(a: np.ndarray) -> np.ndarray:
    """Signed integers as their 32-bit two's-complement words, in uint64."""
    return np.asarray(a, dtype=np.int64).astype(np.uint64) & np.uint64(0xFFFFFFFF)


def _fold(h: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Fold each row's words (B, W) into the hashes ``h`` (B,), in column order."""
    prime = np.uint64(FNV_PRIME)
    with np.errstate(over="ignore"):
        for w in range(columns.shape[1]):
            h = (h ^ columns[:, w]) * prime
    return h


@dataclass(frozen=True)
class Expected:
    """What the parity app must print for each of N samples."""

    hash: np.ndarray  # (N,) uint64
    predicted: np.ndarray  # (N,)
    readout: np.ndarray  # (N, K) final u
    scores: np.ndarray  # (N, K) int64
    events: np.ndarray  # (N,) synaptic events per sample: active presynaptic inputs times fan-out
    kernel_events: dict  # ("ff", layer) / ("recurrence", layer) / ("readout",) -> (N,) events of that kernel


def expected(net: IntNetwork, samples: np.ndarray) -> Expected:
    """Run the reference on ``samples`` (N, T, C) step by step and fold the state hash exactly as the app does.

    Synaptic events count the work an event-driven implementation cannot avoid: per layer the active inputs
    (non-zero counts for layer 0, spikes after it) times the layer's N, the delayed recurrent spikes times
    their fan-out (N for dense, C * K for conv, C * K per lag for taps), and the last layer's spikes times
    the class count.
    """
    x = np.asarray(samples, dtype=np.int64)
    n, t_steps, _ = x.shape
    state = refmodel.initial_state(net, batch=n)
    h = np.full(n, FNV_INIT, dtype=np.uint64)
    kernel = {("readout",): np.zeros(n, dtype=np.int64)}
    for i, layer in enumerate(net.layers):
        kernel[("ff", i)] = np.zeros(n, dtype=np.int64)
        if layer.recurrence is not None:
            kernel[("recurrence", i)] = np.zeros(n, dtype=np.int64)
    last = None
    for t in range(t_steps):
        tr = refmodel.step(net, state, x[:, t])
        for i, layer in enumerate(net.layers):
            source = x[:, t] if i == 0 else tr.layers[i - 1].spikes
            kernel[("ff", i)] += np.count_nonzero(source, axis=1) * layer.n
            if layer.recurrence is not None:
                kernel[("recurrence", i)] += _recurrent_events(layer.recurrence, tr.layers[i].z, state.ring[i], t)
        kernel[("readout",)] += np.count_nonzero(tr.layers[-1].spikes, axis=1) * net.n_classes
        h = _fold(h, state_words(net, state, tr))
        last = tr
    scores = state.score.copy()
    events = np.sum(list(kernel.values()), axis=0)
    return Expected(h, refmodel.predictions_from(scores), last.u.copy(), scores, events, kernel)


def state_words(net: IntNetwork, state: refmodel.State, last: refmodel.StepTrace | None) -> np.ndarray:
    """(B, W) uint64: the 32-bit words of the network's complete state after a step, in the order the apps fold
    them (``last``: that step's trace, for the spike words; None before the first step)."""
    n = state.batch
    cols = []
    for i, layer in enumerate(net.layers):
        spikes = np.zeros((n, layer.n), np.uint8) if last is None else last.layers[i].spikes
        cols += [_u32(state.v[i]), _pack(spikes)]
        if layer.recurrence is not None:
            ring = state.ring[i]  # (L, B, N): slot s of the reference is slot s of the C (head = t % L)
            cols += [_pack(ring[s]) for s in range(ring.shape[0])]
            cols.append(np.full((n, 1), state.t % ring.shape[0], dtype=np.uint64))
    score = state.score.astype(np.uint64)
    halves = np.stack([score & np.uint64(0xFFFFFFFF), score >> np.uint64(32)], axis=2)  # (B, K, 2)
    cols += [_u32(state.u), halves.reshape(n, -1)]  # per class: low word, then high word
    return np.concatenate(cols, axis=1)


def _recurrent_events(rec, z: np.ndarray, ring: np.ndarray, t: int) -> np.ndarray:
    if rec.variant == "dense":
        return np.count_nonzero(z, axis=1) * z.shape[1]
    c, k = rec.weight.shape[-3], rec.weight.shape[-1]
    if rec.variant == "taps":
        slots = ring.shape[0]
        # after the step the ring holds step t at slot t % L; the lags read were t - d for d = 1..D
        return sum(np.count_nonzero(ring[(t - d) % slots], axis=1) for d in range(1, rec.weight.shape[0] + 1)) * c * k
    return np.count_nonzero(z, axis=1) * c * k


@dataclass(frozen=True)
class SampleResult:
    predicted: int
    hash: int
    step_ticks_sum: int
    step_ticks_max: int
    step_stack_max: int  # bytes, the deepest stack of one step (painting; 0: below the resolution of one word)
    readout: tuple[int, ...]
    scores: tuple[int, ...]
    classify_class: int
    classify_ticks: int


@dataclass(frozen=True)
class TargetOutput:
    samples: int
    steps: int
    classes: int
    insns_per_tick: Fraction
    model_sha256: str
    results: tuple[SampleResult, ...]

    def insns(self, ticks: float) -> float:
        return float(ticks * self.insns_per_tick)


_HEADER = re.compile(
    r"^delrec-parity 2 samples=(\d+) steps=(\d+) classes=(\d+) insns_per_tick=(\d+)/(\d+) model=([0-9a-f]{64})$"
)


def parse_output(text: str) -> TargetOutput:
    """Parse the app's output; ``ValueError`` naming the first line that breaks the protocol."""
    lines = [ln.strip() for ln in text.replace("\r", "").splitlines() if ln.strip()]
    head = next((i for i, ln in enumerate(lines) if ln.startswith(PROTOCOL)), None)
    if head is None:
        raise ValueError("no 'delrec-parity' header in the target output")
    m = _HEADER.match(lines[head])
    if not m:
        raise ValueError(f"bad header line: {lines[head]!r}")
    n, t, k = int(m[1]), int(m[2]), int(m[3])
    ratio = Fraction(int(m[4]), int(m[5]))
    body = lines[head + 1 :]
    if len(body) != 4 * n + 1 or body[-1] != "done":
        raise ValueError(f"expected {4 * n} sample lines and 'done', got {len(body)} lines"
                         + (f" (last: {body[-1]!r})" if body else ""))
    results = []
    for i in range(n):
        s, r, sc, c = body[4 * i : 4 * i + 4]
        ms = re.match(rf"^sample {i} class (\d+) hash ([0-9a-f]{{16}}) step_ticks_sum (\d+) step_ticks_max (\d+) "
                      r"step_stack_max (\d+)$", s)
        mr = re.match(rf"^readout {i}((?: -?\d+){{{k}}})$", r)
        msc = re.match(rf"^scores {i}((?: -?\d+){{{k}}})$", sc)
        mc = re.match(rf"^classify {i} class (\d+) ticks (\d+)$", c)
        for line, match in ((s, ms), (r, mr), (sc, msc), (c, mc)):
            if not match:
                raise ValueError(f"bad line for sample {i}: {line!r}")
        results.append(SampleResult(
            predicted=int(ms[1]), hash=int(ms[2], 16), step_ticks_sum=int(ms[3]), step_ticks_max=int(ms[4]),
            step_stack_max=int(ms[5]),
            readout=tuple(int(v) for v in mr[1].split()), scores=tuple(int(v) for v in msc[1].split()),
            classify_class=int(mc[1]), classify_ticks=int(mc[2]),
        ))
    return TargetOutput(n, t, k, ratio, m[6], tuple(results))


FIELDS = {"state hash": (), "class": (), "classify class": (), "readout": ("class",), "scores": ("class",)}


def check(exp: Expected, out: TargetOutput) -> Comparison:
    """Every printed value of every sample against the reference (state hash first: it covers every step)."""
    if out.samples != len(exp.hash):
        return Comparison(len(exp.hash), 0, f"the target ran {out.samples} samples, expected {len(exp.hash)}")
    expected_values = {"state hash": exp.hash, "class": exp.predicted, "classify class": exp.predicted,
                       "readout": exp.readout, "scores": exp.scores}
    observed = {
        "state hash": np.array([r.hash for r in out.results], dtype=np.uint64),
        "class": np.array([r.predicted for r in out.results], dtype=np.int64),
        "classify class": np.array([r.classify_class for r in out.results], dtype=np.int64),
        "readout": np.array([r.readout for r in out.results], dtype=np.int64).reshape(exp.readout.shape),
        "scores": np.array([r.scores for r in out.results], dtype=np.int64).reshape(exp.scores.shape),
    }
    return compare(expected_values, observed, FIELDS)
