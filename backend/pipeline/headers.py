"""DICOM headers as data: tag columns, the --views filter, master-table dates and patients.

One pass over the discovered images before any pixel is decoded, only when an option needs headers:
each DICOM's header is read with ``stop_before_pixels`` (the pixel data is never loaded here), in a
small thread pool.  Non-DICOM images get empty tag cells.  Nothing from a header is written unless the
options ask for it (patient identifiers are sensitive).
"""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from radfeat.errors import ImageError, Problem
from radfeat.pipeline.dicom import (
    DATE_TAGS,
    PATIENT_TAG,
    VIEW_TAG,
    header_datetime,
    is_dicom,
    read_tags,
    tag_problem,
)
from radfeat.pipeline.discovery import ImageRef

if TYPE_CHECKING:  # options.py imports this module for its checks
    from radfeat.options import ExtractOptions

_VIEW_RE = re.compile(r"[A-Za-z]{1,16}")


@dataclass
class HeaderPass:
    refs: list[ImageRef]  # the images to process (tag cells set on each when --dicom-tags)
    skipped: list[tuple[ImageRef, str]] = field(default_factory=list)  # not a chosen view, with the reason
    dates: dict[str, str] = field(default_factory=dict)  # image key → date from the header ("" when none)
    patients: dict[str, str] = field(default_factory=dict)  # image key → PatientID


def dicom_problems(opts: ExtractOptions) -> list[Problem]:
    """--dicom-tags (keywords of pydicom's dictionary, no sequences or binary data), --views, --dicom-voi-lut."""
    problems: list[Problem] = []
    tags = opts.dicom_tags
    if tags is not None:
        if not isinstance(tags, list) or not tags:
            problems.append(Problem("dicom_tags", "Choose at least one DICOM tag (e.g. PatientID,StudyDate)"))
        else:
            for tag in tags:
                msg = tag_problem(tag)
                if msg:
                    problems.append(Problem("dicom_tags", msg))
            twice = sorted({t for t in tags if isinstance(t, str) and tags.count(t) > 1})
            if twice:
                problems.append(Problem("dicom_tags", f"DICOM tag '{', '.join(twice)}' is listed more than once"))
            if opts.master_table is not None:
                problems.append(Problem("dicom_tags", "DICOM tag columns are not available in a master table "
                                                      "(MEDprofiles reads only numbers after the date)"))
    views = opts.views
    if views is not None and (not isinstance(views, list) or not views
                              or not all(isinstance(v, str) and _VIEW_RE.fullmatch(v) for v in views)):
        problems.append(Problem("views", "Views must be DICOM ViewPosition codes such as PA, AP, LL"))
    if not isinstance(opts.dicom_voi_lut, bool):
        problems.append(Problem("dicom_voi_lut", "DICOM VOI LUT must be true or false"))
    return problems


def needed_tags(opts: ExtractOptions) -> list[str]:
    """The header keywords the options need (empty: no header pass)."""
    want: list[str] = list(opts.dicom_tags or [])
    if opts.views is not None:
        want.append(VIEW_TAG)
    mt = opts.master_table
    if mt is not None and mt.dates_from_dicom:
        want.extend(DATE_TAGS)
    if mt is not None and mt.patient_from_dicom:
        want.append(PATIENT_TAG)
    return list(dict.fromkeys(want))


def _read(ref: ImageRef, keywords: list[str]) -> tuple[dict[str, str] | None, str]:
    """``(tags, "")`` for a DICOM, ``(None, reason)`` for a non-DICOM or unreadable header."""
    if not is_dicom(ref.path):
        return None, "not a DICOM file"
    try:
        return read_tags(ref.path, keywords), ""
    except ImageError as exc:
        return None, str(exc)


def _view_problem(tags: dict[str, str] | None, why: str, views: list[str]) -> str | None:
    chosen = ", ".join(views)
    if tags is None:
        return f"skipped: {why}, so no ViewPosition to match the chosen views ({chosen})"
    view = tags.get(VIEW_TAG, "").upper()
    if not view:
        return f"skipped: no ViewPosition in the DICOM header (chosen views: {chosen})"
    if view not in {v.upper() for v in views}:
        return f"skipped: ViewPosition {view} is not one of the chosen views ({chosen})"
    return None


def scan_headers(refs: list[ImageRef], opts: ExtractOptions, workers: int = 4) -> HeaderPass:
    """Read the headers the options need and apply ``--views``; a no-op when none are needed."""
    keywords = needed_tags(opts)
    if not keywords:
        return HeaderPass(list(refs))
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="radfeat-dicom-header") as pool:
        results = list(pool.map(lambda r: _read(r, keywords), refs))
    out = HeaderPass([])
    columns = list(opts.dicom_tags or [])
    for ref, (tags, why) in zip(refs, results, strict=True):
        if opts.views is not None:
            problem = _view_problem(tags, why, opts.views)
            if problem:
                out.skipped.append((ref, problem))
                continue
        if columns:
            ref = dataclasses.replace(ref, tags=tuple((tags or {}).get(c, "") for c in columns))
        if tags is not None:
            out.dates[ref.key] = header_datetime(tags)
            out.patients[ref.key] = tags.get(PATIENT_TAG, "")
        out.refs.append(ref)
    return out
