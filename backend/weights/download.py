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
from radfeat.output.atomic import open_file, remove, replace
from radfeat.weights.catalog import WeightSet

CHUNK = 1 << 20


class DownloadError(RadfeatError, RuntimeError):
    """The download failed or the file did not match its checksum."""


class DownloadCancelled(Cancelled, DownloadError):
    """The download was cancelled; what was received stays in ``<file>.part`` for the next try."""


def fetch(wset: WeightSet, *, log: Callable[[str], None] = print,
          on_progress: Callable[[int, int | None], None] | None = None, timeout: float = 60.0,
          cancel: threading.Event | None = None) -> Path:
    """Download ``wset`` if needed and return the verified local path (``cancel``: stop, keep the ``.part``)."""
    dest = wset.path
    if dest.is_file():
        return dest
    if not wset.url:
        raise DownloadError(f"'{wset.name}' has no download address; add the file with 'radfeat models add'")
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() and not part.is_symlink() else 0  # a planted link is replaced
    resp = _request(wset, have, timeout)
    with resp:
        total = _receive(wset, resp, part, have, log, on_progress, cancel)
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"download of {wset.name} stopped early ({part.stat().st_size} of {total} bytes); "
                            "run the command again to resume")
    _verify(wset, part, log)
    replace(part, dest)
    return dest


def _request(wset: WeightSet, have: int, timeout: float) -> requests.Response:
    """The streaming answer, asking for the rest when ``have`` bytes are already in the ``.part``."""
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        return requests.get(wset.url, headers=headers, stream=True, timeout=timeout)
    except requests.exceptions.SSLError as exc:  # a subclass of ConnectionError: the network is there
        host = urlsplit(wset.url).netloc
        raise DownloadError(f"the TLS certificate of {host} could not be verified, so {wset.name} was not downloaded "
                            f"({_ssl_reason(exc)}); check the clock, a proxy that intercepts HTTPS, or set "
                            "REQUESTS_CA_BUNDLE to your hospital's certificate authority") from None
    except requests.ConnectionError:
        host = urlsplit(wset.url).netloc
        raise DownloadError(f"cannot reach {host} to download {wset.name} (no network here?); on an offline machine "
                            "bring the file over and use 'radfeat models import FOLDER'") from None
    except requests.RequestException as exc:
        raise DownloadError(f"cannot download {wset.name} from {wset.url}: {exc}") from None


def _receive(wset: WeightSet, resp: requests.Response, part: Path, have: int, log: Callable[[str], None],
             on_progress: Callable[[int, int | None], None] | None, cancel: threading.Event | None) -> int | None:
    """Append the body to ``part``; the expected total size when the server said it."""
    if resp.status_code == 416:  # range beyond end: the .part is already complete
        return None
    if have and resp.status_code == 206:
        log(f"Resuming download of {wset.name} at {have} bytes")
    elif resp.status_code == 200:
        have = 0
    else:
        raise DownloadError(f"cannot download {wset.name}: HTTP {resp.status_code} from {wset.url}")
    length = resp.headers.get("Content-Length")
    total = have + int(length) if length is not None else None
    if not have:
        remove(part)
    with open_file(part, "ab") as fh:  # never through a planted link
        done = have
        for block in resp.iter_content(CHUNK):
            if cancel is not None and cancel.is_set():
                fh.flush()
                raise DownloadCancelled(f"download of {wset.name} cancelled after {done} bytes; "
                                        "the next try continues from there")
            fh.write(block)
            done += len(block)
            if on_progress:
                on_progress(done, total)
        fh.flush()
        os.fsync(fh.fileno())
    return total


def _verify(wset: WeightSet, part: Path, log: Callable[[str], None]) -> None:
    """Checksum and size against the catalog; a mismatching file is removed."""
    digest = hashlib.sha256()
    with open_file(part, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    sha = digest.hexdigest()
    if wset.sha256 and sha != wset.sha256.lower():
        remove(part)
        raise DownloadError(f"checksum mismatch for {wset.name}: expected {wset.sha256}, got {sha}; file removed")
    if wset.size and part.stat().st_size != wset.size:
        remove(part)
        raise DownloadError(f"size mismatch for {wset.name}: expected {wset.size} bytes; file removed")
    if not wset.sha256:
        log(f"{wset.name}: sha256 {sha} (no checksum in the catalog to compare with)")


def _ssl_reason(exc: Exception) -> str:
    """The certificate problem in a few words (``certificate verify failed: self-signed certificate``)."""
    import re

    text = str(exc)
    found = re.search(r"certificate verify failed: ([^(')\]]+)", text)
    return f"certificate verify failed: {found.group(1).strip()}" if found else "TLS handshake failed"
