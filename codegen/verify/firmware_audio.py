"""Parity on a target from audio: the audio app's configuration, what it must print, and how its output is read.

The audio app (``firmware/app/audio/main.c``) feeds embedded int16 clips to the generated model in blocks of one
hop (10 ms), as a microphone's DMA would, through ``<prefix>_listen`` (the front end, then one network step per
completed bin). After every block it prints a hash of the last bin's counts and a hash of the complete state
(the network's, folded as :mod:`codegen.verify.firmware_app` folds it, then the front end's); per clip the class,
the scores and SysTick counts of ``<prefix>_listen`` (front end and network) and of ``<prefix>_hear`` (the front
end alone). This module writes the app's ``app_config.h``, recomputes every expected value from the integer
reference (:mod:`codegen.integer.frontend_ref` and :mod:`codegen.integer.refmodel`), parses the output and
compares the two with :func:`codegen.verify.compare.compare`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..generator.emit import c_array_body, render_template
from ..generator.plan import Plan
from ..integer import frontend_ref, refmodel
from ..integer.network import IntNetwork
from .compare import Comparison, compare
from .firmware_app import FNV_INIT, _fold, _u32, state_words

TEMPLATES = ("codegen.verify", "codegen.generator")
PROTOCOL = "delrec-audio 1"


def _clips(clips) -> list[np.ndarray]:
    out = [np.asarray(c) for c in clips]
    if not out or any(c.ndim != 1 or c.size == 0 for c in out):
        raise ValueError("need at least one non-empty 1-D clip")
    if any(c.dtype.kind not in "iu" or c.min() < -32768 or c.max() > 32767 for c in out):
        raise ValueError("clips must hold int16 samples")
    return out


def audio_config(plan: Plan, clips) -> str:
    """``app_config.h`` of the audio app for ``clips`` (int16 arrays)."""
    if plan.frontend is None:
        raise ValueError("the model has no audio front end")
    clips = _clips(clips)
    pcm = np.concatenate(clips)
    offsets = np.concatenate([[0], np.cumsum([c.size for c in clips])])
    return render_template("audio_config.h.j2", plan, TEMPLATES, n_clips=len(clips), n_samples=int(pcm.size),
                           pcm=c_array_body(pcm, per_line=20), offsets=c_array_body(offsets))


def frontend_words(fe_state: frontend_ref.State) -> np.ndarray:
    """(B, W) uint64: the front end's state as the audio app folds it (ring, pos, fill, floor, peak, v, refractory,
    counts, the previous bin's L)."""
    b = fe_state.batch
    col = lambda value: np.full((b, 1), value, dtype=np.uint64)  # noqa: E731
    return np.concatenate([
        _u32(fe_state.ring), col(fe_state.pos), col(fe_state.fill), _u32(fe_state.floor), _u32(fe_state.peak[:, None]),
        _u32(fe_state.v), _u32(fe_state.refractory), _u32(fe_state.counts), _u32(fe_state.prev),
    ], axis=1)


@dataclass(frozen=True)
class Expected:
    """What the audio app must print: per clip, per block the steps taken and the two hashes; the class and scores."""

    steps: list[np.ndarray]  # per clip (blocks,)
    counts_hash: list[np.ndarray]  # per clip (blocks,) uint64
    state_hash: list[np.ndarray]
    predicted: np.ndarray  # (clips,)
    scores: np.ndarray  # (clips, K)


def blocks(n: int, hop: int) -> list[tuple[int, int]]:
    """The (start, stop) of each block the app feeds: ``hop`` samples, the last one possibly shorter."""
    return [(a, min(a + hop, n)) for a in range(0, n, hop)]


def expected(net: IntNetwork, clips) -> Expected:
    """Run the integer pipeline (front end, then the network per completed bin) block by block, as the app does."""
    fe = net.frontend
    steps, counts_hash, state_hash, predicted, scores = [], [], [], [], []
    for clip in _clips(clips):
        fs = frontend_ref.initial_state(fe)
        ns = refmodel.initial_state(net)
        last = None
        n_steps, h_counts, h_state = [], [], []
        for start, stop in blocks(clip.size, fe.hop):
            counts, fs, _ = frontend_ref.feed(fe, fs, clip[start:stop])
            for j in range(counts.shape[1]):
                last = refmodel.step(net, ns, counts[:, j].astype(np.int64))
            n_steps.append(counts.shape[1])
            h_counts.append(_fold(np.full(1, FNV_INIT, np.uint64), _u32(fs.counts))[0])
            words = np.concatenate([state_words(net, ns, last), frontend_words(fs)], axis=1)
            h_state.append(_fold(np.full(1, FNV_INIT, np.uint64), words)[0])
        steps.append(np.array(n_steps, np.int64))
        counts_hash.append(np.array(h_counts, np.uint64))
        state_hash.append(np.array(h_state, np.uint64))
        predicted.append(int(refmodel.predictions_from(ns.score)[0]))
        scores.append(ns.score[0].copy())
    return Expected(steps, counts_hash, state_hash, np.array(predicted, np.int64), np.stack(scores))


@dataclass(frozen=True)
class ClipResult:
    predicted: int
    blocks: int
    steps: int
    listen_ticks_sum: int
    listen_ticks_max: int
    hear_ticks_sum: int
    hear_ticks_max: int
    block_steps: tuple[int, ...]
    counts_hash: tuple[int, ...]
    state_hash: tuple[int, ...]
    scores: tuple[int, ...]


@dataclass(frozen=True)
class AudioOutput:
    clips: int
    hop: int
    channels: int
    classes: int
    insns_per_tick: Fraction
    model_sha256: str
    results: tuple[ClipResult, ...]

    def insns(self, ticks: float) -> float:
        return float(ticks * self.insns_per_tick)


_HEADER = re.compile(
    r"^delrec-audio 1 clips=(\d+) hop=(\d+) channels=(\d+) classes=(\d+) insns_per_tick=(\d+)/(\d+) "
    r"model=([0-9a-f]{64})$")
_CLIP = re.compile(r"^clip (\d+) class (-?\d+) blocks (\d+) steps (\d+) listen_ticks_sum (\d+) listen_ticks_max (\d+) "
                   r"hear_ticks_sum (\d+) hear_ticks_max (\d+)$")


def parse_output(text: str) -> AudioOutput:
    """Parse the audio app's output; ``ValueError`` naming the first line that breaks the protocol."""
    lines = [ln.strip() for ln in text.replace("\r", "").splitlines() if ln.strip()]
    head = next((i for i, ln in enumerate(lines) if ln.startswith(PROTOCOL)), None)
    if head is None:
        raise ValueError("no 'delrec-audio' header in the target output")
    m = _HEADER.match(lines[head])
    if not m:
        raise ValueError(f"bad header line: {lines[head]!r}")
    n, hop, channels, k = (int(m[i]) for i in range(1, 5))
    body = lines[head + 1 :]
    if not body or body[-1] != "done":
        raise ValueError(f"the output does not end with 'done' (last line: {body[-1] if body else '(none)'!r})")
    results, at = [], 0
    for i in range(n):
        block_steps, counts_hash, state_hash = [], [], []
        block_re = re.compile(rf"^block {i} (\d+) steps (\d+) counts ([0-9a-f]{{16}}) state ([0-9a-f]{{16}})$")
        while at < len(body) and body[at].startswith(f"block {i} "):
            mb = block_re.match(body[at])
            if not mb or int(mb[1]) != len(block_steps):
                raise ValueError(f"bad block line for clip {i}: {body[at]!r}")
            block_steps.append(int(mb[2]))
            counts_hash.append(int(mb[3], 16))
            state_hash.append(int(mb[4], 16))
            at += 1
        if at + 1 >= len(body):
            raise ValueError(f"the output ends inside clip {i}")
        mc, ms = _CLIP.match(body[at]), re.match(rf"^scores {i}((?: -?\d+){{{k}}})$", body[at + 1])
        if not mc or int(mc[1]) != i or not ms:
            raise ValueError(f"bad summary lines for clip {i}: {body[at]!r}, {body[at + 1]!r}")
        if int(mc[3]) != len(block_steps):
            raise ValueError(f"clip {i}: {len(block_steps)} block lines but the summary says {mc[3]}")
        results.append(ClipResult(int(mc[2]), int(mc[3]), int(mc[4]), int(mc[5]), int(mc[6]), int(mc[7]), int(mc[8]),
                                  tuple(block_steps), tuple(counts_hash), tuple(state_hash),
                                  tuple(int(v) for v in ms[1].split())))
        at += 2
    if body[at:] != ["done"]:
        raise ValueError(f"unexpected line after the last clip: {body[at]!r}")
    return AudioOutput(n, hop, channels, k, Fraction(int(m[5]), int(m[6])), m[7], tuple(results))


FIELDS = {"block steps": ("block",), "counts hash": ("block",), "state hash": ("block",), "class": (),
          "scores": ("class",)}


def check(exp: Expected, out: AudioOutput) -> Comparison:
    """Every printed value of every clip against the reference; clips are compared one by one (their block
    counts may differ) and summed."""
    n = len(exp.predicted)
    if out.clips != n:
        return Comparison(n, 0, f"the target ran {out.clips} clips, expected {n}")
    total = Comparison(0, 0)
    for i, r in enumerate(out.results):
        if len(r.block_steps) != exp.steps[i].size:
            total = total + Comparison(1, 0, f"clip {i}: {len(r.block_steps)} blocks, expected {exp.steps[i].size}")
            continue
        expected_values = {"block steps": exp.steps[i][None], "counts hash": exp.counts_hash[i][None],
                           "state hash": exp.state_hash[i][None], "class": exp.predicted[i : i + 1],
                           "scores": exp.scores[i : i + 1]}
        observed = {"block steps": np.array([r.block_steps], np.int64),
                    "counts hash": np.array([r.counts_hash], np.uint64),
                    "state hash": np.array([r.state_hash], np.uint64),
                    "class": np.array([r.predicted], np.int64), "scores": np.array([r.scores], np.int64)}
        total = total + compare(expected_values, observed, FIELDS, first_sample=i)
    return total
