"""Verified, resumable downloads of weight files into the radfeat home folder.

A partial download is kept as ``<file>.part`` and continued with an HTTP Range
request.  When the catalog knows the sha256 the file must match it; otherwise
the digest is computed and printed so it can be pinned (trust on first use).
The file appears under its final name only once complete and verified.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests
from radfeat.errors import Cancelled, RadfeatError
from radfeat.weights.catalog import WeightSet

CHUNK = 1 << 20


class DownloadError(RadfeatError, RuntimeError):
    """The download failed or the file did not match its checksum."""


class DownloadCancelled(DownloadError, Cancelled):
    """The download was cancelled; what was received stays in ``<file>.part`` for the next try."""


def fetch(ws: WeightSet, *, log: Callable[[str], None] = print,
          on_progress: Callable[[int, int | None], None] | None = None, timeout: float = 60.0,
          cancel: threading.Event | None = None) -> Path:
    """Download ``ws`` if needed and return the verified local path (``cancel``: stop, keep the ``.part``)."""
    dest = ws.path
    if dest.is_file():
        return dest
    if not ws.url:
        raise DownloadError(f"'{ws.name}' has no download address; add the file with 'radfeat models add'")
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = requests.get(ws.url, headers=headers, stream=True, timeout=timeout)
    except requests.ConnectionError:
        host = urlsplit(ws.url).netloc
        raise DownloadError(f"cannot reach {host} to download {ws.name} (no network here?); on an offline machine "
                            "bring the file over and use 'radfeat models import FOLDER'") from None
    except requests.RequestException as exc:
        raise DownloadError(f"cannot download {ws.name} from {ws.url}: {exc}") from None
    with resp:
        if resp.status_code == 416:  # range beyond end: the .part is already complete
            resp.close()
        elif have and resp.status_code == 206:
            log(f"Resuming download of {ws.name} at {have} bytes")
        elif resp.status_code == 200:
            have = 0
        else:
            raise DownloadError(f"cannot download {ws.name}: HTTP {resp.status_code} from {ws.url}")
        total = None
        if resp.status_code in (200, 206):
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if have else "wb") as fh:
                done = have
                for block in resp.iter_content(CHUNK):
                    if cancel is not None and cancel.is_set():
                        fh.flush()
                        raise DownloadCancelled(f"download of {ws.name} cancelled after {done} bytes; "
                                                "the next try continues from there")
                    fh.write(block)
                    done += len(block)
                    if on_progress:
                        on_progress(done, total)
                fh.flush()
                os.fsync(fh.fileno())
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"download of {ws.name} stopped early ({part.stat().st_size} of {total} bytes); "
                            "run the command again to resume")
    digest = hashlib.sha256()
    with open(part, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    sha = digest.hexdigest()
    if ws.sha256 and sha != ws.sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {ws.name}: expected {ws.sha256}, got {sha}; file removed")
    if ws.size and part.stat().st_size != ws.size:
        part.unlink(missing_ok=True)
        raise DownloadError(f"size mismatch for {ws.name}: expected {ws.size} bytes; file removed")
    if not ws.sha256:
        log(f"{ws.name}: sha256 {sha} (no checksum in the catalog to compare with)")
    os.replace(part, dest)
    return dest
