"""File names as radfeat shows and writes them.

On Linux a file name is a string of bytes; Python hands bytes that are not valid UTF-8
to us as lone surrogates (``b"caf\\xe9.jpg"`` → ``"caf\\udce9.jpg"``), which cannot be
written to a UTF-8 table, a JSON answer or a terminal.  Wherever radfeat *shows* a
name — the ``level_*`` and ``filename`` cells, the errors and skipped lists, log
lines, RPC answers — each such byte is written as a backslash escape, ``caf\\xe9.jpg``.
Unlike a replacement character this keeps two different names different (so resume
and the master-table join still tell them apart) and says which byte it was.  The
file itself is still read through its real name.
"""

from __future__ import annotations

import os
from pathlib import PurePath


def shown(name: str | PurePath) -> str:
    """``name`` with every byte that is not UTF-8 written as ``\\xNN`` (valid names are unchanged)."""
    text = os.fspath(name)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
            if _only_escapes(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _only_escapes(text: str) -> bool:
    """True when every surrogate in ``text`` is one of Python's escapes for an undecodable byte."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)
