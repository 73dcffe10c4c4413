"""Produced files as result rows: one record type, `Artifact`, for every exported format (01),
quantized variant (02) and seq2seq ONNX directory (06) the study makes.

A producer never raises on a failed method: its Artifact says `status="error"` (or
"skipped") and why, so a notebook can tabulate failures beside successes;
`raise_for_status()` turns a failure back into an exception. `row()` gives the columns of
the table the artifact's `kind` goes to (ROW_LAYOUT), as each notebook has always written them,
plus `cache` (hit or miss) for a file that came from the build cache (`cached_artifact`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from helpers.backends import cache

# kind: (the name's column, the seconds' column, whether the path is a column, extra columns)
ROW_LAYOUT = {
    "export": ("format", "export_seconds", True, ("warning_count", "node_count")),
    "quantization": ("method", "seconds", True, ()),
    "files": ("variant", "seconds", False, ("node_count", "fused_ops")),
}


@dataclass
class Artifact:
    """One produced file (or directory of files): where it is, what it cost, and whether it
    works. fused_ops: fused operators of an ONNX graph by op type (fused_<Op> columns), or
    their total over several graphs. details: how it was made (quantization settings)."""

    kind: str  # export / quantization / files: the table it goes to (ROW_LAYOUT)
    name: str  # the format, the quantization method or the file variant
    path: str | None = None
    seconds: float | None = float("nan")  # wall time of producing it
    size_mb: float | None = float("nan")
    status: str = "ok"  # ok / skipped / error
    message: str = ""
    warning_count: int | None = None
    node_count: int | None = None
    fused_ops: dict[str, int] | int | None = None
    details: dict = field(default_factory=dict)
    cache: str | None = None  # "hit" / "miss" for a file from the build cache; seconds: its build's

    def __post_init__(self) -> None:
        if self.kind not in ROW_LAYOUT:
            raise ValueError(f"kind={self.kind!r}; accepted: {', '.join(ROW_LAYOUT)}")

    @property
    def label(self) -> str:
        """Short unique name, e.g. 'ort_dynamic per-channel' (the name alone without that setting)."""
        per_channel = self.details.get("per_channel")
        if per_channel is None:
            return self.name
        return f"{self.name} {'per-channel' if per_channel else 'per-tensor'}"

    def row(self) -> dict:
        """Flat dict for the kind's result table: a dict of fused_ops becomes fused_<Op> columns."""
        name_column, seconds_column, with_path, extras = ROW_LAYOUT[self.kind]
        row = {name_column: self.name}
        if with_path:
            row["path"] = self.path
        row.update({seconds_column: self.seconds, "size_mb": self.size_mb, "status": self.status})
        row["message"] = self.message
        row.update({column: getattr(self, column) for column in extras})
        if isinstance(self.fused_ops, dict):
            row.update({f"fused_{op}": n for op, n in self.fused_ops.items()})
        row.update(self.details)
        if self.kind == "quantization":
            row["label"] = self.label
        if self.cache is not None:
            row["cache"] = self.cache
        return row

    def raise_for_status(self) -> "Artifact":
        if self.status != "ok":
            raise RuntimeError(f"{self.name} {self.kind} {self.status}: {self.message}")
        return self


# what entry.json keeps of an Artifact, to give it back on a hit
_KEPT = ("size_mb", "warning_count", "node_count", "fused_ops", "details")


def _outcome(record: Artifact, folder: Path) -> dict:
    """A producer's Artifact as the outcome of a cached build (see cache.cached)."""
    inside = record.path and Path(record.path).resolve().is_relative_to(folder.resolve())
    return {
        "file": Path(record.path).resolve().relative_to(folder.resolve()).as_posix() if inside else None,
        "status": record.status,
        "message": record.message,
        "seconds": record.seconds,
        "info": {k: v for k, v in asdict(record).items() if k in _KEPT},
    }


def cached_artifact(
    fields: dict, produce: Callable[[Path], Artifact], kind: str, name: str, label: str = ""
) -> Artifact:
    """The Artifact of a file from the build cache: `produce(folder)` makes it into `folder` on a
    miss (a phase line says `label`, e.g. "exporting minilm to onnx"); on a hit it is given back
    from the entry, with the original build's seconds, size, status, message and statistics, and
    `cache="hit"`. `kind` and `name` label the record."""
    from helpers.core import progress

    def build(folder: Path) -> dict:
        with progress.phase(label or f"building {name}"):
            return _outcome(produce(folder), folder)

    entry = cache.cached(fields, build)
    info = entry.get("info") or {}
    return Artifact(
        kind,
        name,
        entry["path"],
        entry["built_s"],
        info.get("size_mb", float("nan")),
        entry["status"],
        entry["message"],
        info.get("warning_count"),
        info.get("node_count"),
        info.get("fused_ops"),
        info.get("details") or {},
        cache=entry["cache"],
    )
