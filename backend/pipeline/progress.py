"""What a run reports while it works (:class:`Progress`) and when it ends (:class:`Summary`).

Light on purpose (no engine imports): the CLI's progress bar, the backend's jobs and scripts read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Progress:
    """One progress report: the stage, counts, speed, ETA, a message and every failure so far."""

    stage: str
    done: int = 0
    total: int = 0
    failed: int = 0
    images_per_s: float = 0.0
    eta_s: float | None = None
    message: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)  # every failure so far: {"path", "reason"}

    @classmethod
    def of(cls, report: Progress | dict[str, Any], previous: Progress) -> Progress:
        """A report as a Progress: the engine's own, or a job body's dict of some of its fields."""
        if isinstance(report, Progress):
            return report
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in dict(report).items() if k in known}
        return cls(**{"stage": previous.stage, "errors": previous.errors, **given})

    def view(self) -> dict[str, Any]:
        """The fields a job status shows (``errors`` copied)."""
        return {**asdict(self), "errors": list(self.errors)}


SHOWN_SKIPPED = 200


@dataclass
class Summary:
    output: str
    errors_path: str
    provenance_path: str
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # not a chosen --views view (listed in the errors file with the reason)
    resumed: int = 0
    total: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    images_per_s: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    master_table: dict[str, Any] | None = None
    master: dict[str, Any] | None = None  # master_table in words for the page (see MasterReport.brief)
    provider: str = ""
    skipped_files: int = 0  # files and folders of the input not used (listed with the reason in skipped_path)
    skipped_path: str = ""
    skipped_items: list[dict[str, str]] = field(default_factory=list)  # the first SHOWN_SKIPPED of them
    ignored: int = 0  # hidden files and system clutter (.DS_Store, Thumbs.db), counted only
    changed: int = 0  # resumed rows whose image changed since they were written: done again
    vanished: int = 0  # resumed rows whose image is gone: dropped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


