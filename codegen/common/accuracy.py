"""Accuracy, computed one way everywhere: a count of correct predictions over a total, then one division.

Every stage (float, fake-quant, integer reference, host C, target) records ``correct`` and ``total``, so the
same 278 of 320 prints as the same ``0.8688 (278/320)`` whatever computed it (no float32 means, no mixed widths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.correct <= self.total:
            raise ValueError(f"accuracy needs 0 <= correct <= total, got {self.correct}/{self.total}")

    @classmethod
    def of(cls, predictions, labels) -> "Accuracy":
        """Exact count of ``predictions == labels`` (any integer arrays or tensors of one shape)."""
        p, y = np.asarray(predictions).astype(np.int64), np.asarray(labels).astype(np.int64)
        if p.shape != y.shape:
            raise ValueError(f"{p.shape} predictions for {y.shape} labels")
        return cls(int(np.count_nonzero(p == y)), int(y.size))

    @property
    def value(self) -> float:
        """``correct / total`` (0.0 for no samples), a Python float."""
        return self.correct / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.value:.4f} ({self.correct}/{self.total})"

    def as_dict(self) -> dict:
        return {"correct": self.correct, "total": self.total, "acc": self.value}

    @classmethod
    def from_dict(cls, d: dict) -> "Accuracy":
        return cls(int(d["correct"]), int(d["total"]))
