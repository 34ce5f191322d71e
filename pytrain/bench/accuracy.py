"""Accuracy benchmark: SNN (float and int8) and the baselines on the same clips, folds and seeds, as one table.

Either a corpus built by ``delrec-edge data hard`` (audio with a manifest of leave-speakers-out folds: every
fold is encoded once with the sample-rate aware front end, and the log-mel baseline reads the audio), or one
spike dataset folder (the easy offline dataset: SNN and the spike-count baseline only).

Per fold and seed the SNN is trained with the preset's defaults (``train``) and quantized to int8
(``quantize``), into ``WORK/runs/<preset>/fold<K>/seed<S>``; a run whose metrics already hold the int8
accuracy is reused, so an interrupted benchmark continues where it stopped. Every number is a mean and a
spread (sample standard deviation) over all (fold, seed) pairs, beside the counts it comes from.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codegen.common.errors import UserError

ROWS = (
    ("snn_float", "SNN float (test)"),
    ("snn_int8", "SNN int8 (test)"),
    ("snn_train", "SNN float (un-augmented training clips)"),
    ("logmel_mlp", "float log-mel MLP (test)"),
    ("spike_logreg", "logistic regression on spike counts (test)"),
)


@dataclass
class AccuracyOptions:
    work: Path
    corpus: Path | None = None
    data: Path | None = None
    folds: list[int] | None = None  # None: every fold of the corpus
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    presets: list[str] = field(default_factory=lambda: ["edge"])
    steps: int | None = None  # None: the preset's
    baselines: bool = True
    progress: bool = True


@dataclass
class Unit:
    """One train/test split: a spike dataset and, for a corpus fold, its audio files in dataset order."""

    name: str
    dataset: Path
    train_files: list[Path] | None = None
    test_files: list[Path] | None = None
    file_labels: list[str] | None = None  # class names of train_files then test_files
    sample_rate: int | None = None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def corpus_units(corpus: Path, work: Path, folds: list[int] | None) -> list[Unit]:
    """Encode the corpus's folds once into ``work/data/fold<K>`` and describe the wanted ones."""
    from pytrain.data.hardset import read_manifest
    from pytrain.data.spikefile import read_meta
    from pytrain.data.wavset import build_wav_folds, scan, split_mask

    manifest = read_manifest(corpus)
    if manifest is None:
        raise UserError(f"{corpus} is not a corpus (no corpus.json): build one with 'delrec-edge data hard'")
    n_folds = len(manifest["folds"])
    wanted = list(range(n_folds)) if folds is None else folds
    bad = [k for k in wanted if not 0 <= k < n_folds]
    if bad:
        raise UserError(f"--folds: {corpus} has folds 0..{n_folds - 1}, not {bad}")
    data_dir = work / "data"
    if not all((data_dir / f"fold{k}" / "dataset.json").is_file() for k in range(n_folds)):
        _log(f"encoding {corpus} into {data_dir}")
        build_wav_folds(corpus, data_dir, force=True)
    files = scan(corpus)
    units = []
    for k in wanted:
        mask = split_mask(files, "speaker", 0.5, 0, corpus, k)
        rate = int(read_meta(data_dir / f"fold{k}").source["front_end"]["sample_rate"])
        train = [f for f, m in zip(files, mask) if not m]
        test = [f for f, m in zip(files, mask) if m]
        units.append(Unit(f"fold{k}", data_dir / f"fold{k}", [f.path for f in train], [f.path for f in test],
                          [f.label for f in train + test], rate))
    return units


def snn_run(unit: Unit, preset: str, seed: int, opts: AccuracyOptions) -> dict:
    """Train and quantize one SNN (or reuse a finished run); its metrics."""
    from pytrain import runfolder
    from pytrain.export.quantize import QuantizeOptions, quantize_run
    from pytrain.training.loop import TrainOptions, train

    run = opts.work / "runs" / preset / unit.name / f"seed{seed}"
    metrics_path = run / runfolder.METRICS_FILE
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        if metrics.get("complete") and "int_acc" in metrics:
            return metrics
    _log(f"training {preset} on {unit.name}, seed {seed} -> {run}")
    train(TrainOptions(preset=preset, data=str(unit.dataset), out=run, seed=seed, force=True,
                       progress=opts.progress, overrides={"steps": opts.steps}))
    quantize_run(QuantizeOptions(run=run, progress=False))
    return json.loads(metrics_path.read_text(encoding="utf-8"))


def baseline_runs(unit: Unit, seed: int, cache: dict) -> dict:
    """Both baselines on the unit's split for ``seed`` (the validation speakers depend on it)."""
    from pytrain.data.loader import load_data

    from .baselines import Split, corpus_logmel, count_features, logmel_mlp, spike_logreg

    bundle = load_data(str(unit.dataset), bin_ms=10.0, seed=seed, progress=False)
    n_tr, n_va, n_te = len(bundle.train), len(bundle.val), len(bundle.test)
    split = Split(np.arange(n_tr), np.arange(n_tr, n_tr + n_va), np.arange(n_tr + n_va, n_tr + n_va + n_te))
    frames = np.concatenate([bundle.train.x.numpy(), bundle.val.x.numpy(), bundle.test.x.numpy()])
    labels = np.concatenate([bundle.train.y.numpy(), bundle.val.y.numpy(), bundle.test.y.numpy()])
    out = {"spike_logreg": spike_logreg(count_features(frames), labels, split)}
    if unit.train_files is not None:
        import h5py

        from pytrain.data.loader import validation_split

        key = unit.name
        if key not in cache:
            cache[key] = (corpus_logmel(unit.train_files, unit.sample_rate), corpus_logmel(unit.test_files, unit.sample_rate))
        train_feats, test_feats = cache[key]
        # the loader's own split of the training file, recomputed from its speaker ids
        folder = unit.dataset / "SHD"
        with h5py.File(folder / "shd_train.h5", "r") as f:
            train_speakers = np.asarray(f["extra/speaker"][()]).astype(np.int64)
            train_labels = np.asarray(f["labels"][()]).astype(np.int64)
        with h5py.File(folder / "shd_test.h5", "r") as f:
            test_speakers = np.asarray(f["extra/speaker"][()]).astype(np.int64)
            test_labels = np.asarray(f["labels"][()]).astype(np.int64)
        file_ids = np.array([bundle.classes.index(name) for name in unit.file_labels])
        if not np.array_equal(file_ids, np.concatenate([train_labels, test_labels])):
            raise RuntimeError(f"{unit.name}: the audio files are not in the order of the encoded dataset")
        tr, va, _ = validation_split(train_speakers, test_speakers, 0.1, seed)
        if not np.array_equal(np.concatenate([train_labels[tr], train_labels[va], test_labels]), labels):
            raise RuntimeError(f"{unit.name}: the baseline split differs from the loader's")
        feats = np.concatenate([train_feats[tr], train_feats[va], test_feats])
        out["logmel_mlp"] = logmel_mlp(feats, labels, split, seed)
    return out


def run_accuracy(opts: AccuracyOptions) -> dict:
    """Run (or reuse) every cell and return ``{"cells": [...], "table": {...}}``; also written to WORK/accuracy.json."""
    from codegen.common.atomic import write_json_atomic
    from pytrain.model.presets import get_preset

    if (opts.corpus is None) == (opts.data is None):
        raise UserError("give exactly one of --corpus (an audio corpus) or --data (a spike dataset)")
    for preset in opts.presets:
        get_preset(preset)
    if not opts.seeds:
        raise UserError("--seeds is empty")
    opts.work.mkdir(parents=True, exist_ok=True)
    if opts.corpus is not None:
        units = corpus_units(opts.corpus, opts.work, opts.folds)
    else:
        from pytrain.data.spikefile import read_meta

        read_meta(opts.data)
        units = [Unit("all", opts.data)]
    cells = []
    cache: dict = {}
    for unit in units:
        for seed in opts.seeds:
            if opts.baselines:
                for name, result in baseline_runs(unit, seed, cache).items():
                    cells.append({"unit": unit.name, "seed": seed, "model": name, **result})
            for preset in opts.presets:
                m = snn_run(unit, preset, seed, opts)
                n = m["data"]["n_test"]
                common = {"unit": unit.name, "seed": seed, "preset": preset, "epochs": m["epochs"],
                          "optimizer_steps": m.get("optimizer_steps"), "n_test": n}
                cells.append({**common, "model": "snn_float", "acc": m["test_acc"], "correct": m["test_correct"], "n": n})
                cells.append({**common, "model": "snn_int8", "acc": m["int_acc"],
                              "correct": int(round(m["int_acc"] * n)), "n": n})
                cells.append({**common, "model": "snn_train", "acc": m["train_acc"], "correct": m["train_correct"],
                              "n": m["data"]["n_train"]})
            write_json_atomic(opts.work / "accuracy.json", {"cells": cells})
    result = {"cells": cells, "table": summarise(cells)}
    write_json_atomic(opts.work / "accuracy.json", result)
    return result


def _mean_spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def summarise(cells: list[dict]) -> list[dict]:
    """One row per (model, preset): mean and spread over all (unit, seed) cells, total correct / total."""
    rows = []
    keys = []
    for c in cells:
        key = (c["model"], c.get("preset"))
        if key not in keys:
            keys.append(key)
    order = {name: i for i, (name, _) in enumerate(ROWS)}
    keys.sort(key=lambda k: (k[1] or "", order.get(k[0], 99)))
    for model, preset in keys:
        chosen = [c for c in cells if c["model"] == model and c.get("preset") == preset]
        mean, spread = _mean_spread([c["acc"] for c in chosen])
        rows.append({"model": model, "preset": preset, "label": dict(ROWS).get(model, model), "mean": mean,
                     "std": spread, "min": min(c["acc"] for c in chosen), "max": max(c["acc"] for c in chosen),
                     "cells": len(chosen), "units": sorted({c["unit"] for c in chosen}),
                     "seeds": sorted({c["seed"] for c in chosen}),
                     "correct": sum(c["correct"] for c in chosen), "total": sum(c["n"] for c in chosen)})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| model | preset | accuracy mean | spread (sd) | min..max | runs (folds x seeds) | correct / total |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = "-" if math.isnan(r["std"]) else f"{r['std']:.3f}"
        lines.append(
            f"| {r['label']} | {r['preset'] or '-'} | {r['mean']:.3f} | {spread} | {r['min']:.3f}..{r['max']:.3f} | "
            f"{r['cells']} ({len(r['units'])} x {len(r['seeds'])}) | {r['correct']:,} / {r['total']:,} |"
        )
    return "\n".join(lines)
