"""The dates CSV of master-table mode: which image was taken when.

Read the way a spreadsheet user expects, and checked before any extraction starts:

* **Encoding** — UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), else
  Windows-1252 (Excel's "CSV" on Windows; ``é`` is one byte ``0xE9``).  Anything else — a byte that
  none of these can read, a binary file, an Excel workbook renamed ``.csv`` — is refused with the reason.
* **Delimiter** — comma, semicolon (Excel in most European locales), tab or ``|``: the one that
  splits the first lines into the most, equally many, columns.  Column names are stripped of spaces.
* **Dates** (:func:`date_problems`) — the date column must hold dates, and not a mix of dates with a
  time zone (``2019-03-04T10:22:00Z``) and without (``2019-03-04``), which cannot be ordered on one
  time line.  Single unparseable dates are not fatal: they are listed by the master table.

:func:`load` is cached on (path, size, modification time), so the page's repeated validation is free.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from radfeat.errors import InvalidInput


class DatesError(InvalidInput, ValueError):
    """The dates CSV cannot be read; the message says why."""


DELIMITERS = (",", ";", "\t", "|")
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "'|'"}
# A time followed by a zone: Z, UTC/GMT, or an offset (+01:00, -0500, +02)
_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$", re.I)


@dataclass(frozen=True)
class DatesCsv:
    frame: pd.DataFrame  # every column as text, in file order
    encoding: str
    delimiter: str

    def describe(self) -> str:
        return f"{self.encoding}, {_NAMES[self.delimiter]}-separated"


SNIFF_BYTES = 64 * 1024
_TEXT_CONTROLS = {9, 10, 12, 13}


def check_text(name: str, head: bytes) -> None:
    """Refuse a file that is not text (a spreadsheet, an image, an archive…) before pandas guesses at it."""
    head = head[:SNIFF_BYTES]
    controls = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROLS)
    if b"\x00" in head or (head and controls / len(head) > 0.05):
        kind = " (an Excel workbook; save it as CSV)" if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")) else ""
        raise DatesError(f"{name} is not a text CSV file{kind}; choose the CSV file of image dates")


def _decode(data: bytes, name: str) -> tuple[str, str]:
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), encoding_name(codec)
            except UnicodeDecodeError as exc:
                raise DatesError(f"Cannot read the dates CSV: not valid {encoding_name(codec)} text "
                                 f"(byte {exc.start})") from None
    check_text(name, data)
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            line = data.count(b"\n", 0, utf8_error.start) + 1
            raise DatesError(f"Cannot read the dates CSV: not UTF-8 or Windows-1252 text (byte "
                             f"0x{data[utf8_error.start]:02X} on line {line}); save it as 'CSV UTF-8'") from None


def encoding_name(codec: str) -> str:
    return "UTF-8" if codec.startswith("utf-8") else codec.upper()


def _delimiter(text: str) -> str:
    """The delimiter giving the most columns, the same number on each of the first lines (comma on a tie)."""
    head = text[:65536].splitlines()[:50]
    best, best_n = ",", 1
    for delim in DELIMITERS:
        counts = {len(row) for row in csv.reader(head, delimiter=delim) if row}
        if len(counts) == 1 and (n := counts.pop()) > best_n:
            best, best_n = delim, n
    return best


def load(path: Path) -> DatesCsv:
    """The whole dates CSV as text columns; ``ValueError`` with the reason when it cannot be read."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DatesError(f"Cannot read the dates CSV: {exc.strerror or exc}") from None
    return _load(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load(path: str, _size: int, _mtime_ns: int) -> DatesCsv:
    try:
        text, encoding = _decode(Path(path).read_bytes(), Path(path).name)
    except OSError as exc:
        raise DatesError(f"Cannot read the dates CSV: {exc.strerror or exc}") from None
    if not text.strip():
        raise DatesError("Cannot read the dates CSV: the file is empty")
    delim = _delimiter(text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delim, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise DatesError(f"Cannot read the dates CSV ({_NAMES[delim]}-separated): "
                         f"{str(exc).strip().splitlines()[-1]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return DatesCsv(frame, encoding, delim)


def read_columns(path: Path) -> list[str]:
    return list(load(path).frame.columns)


def inspect_csv(path: str | Path, sample: int = 5) -> dict[str, Any]:
    """Columns, row count and the first rows of a CSV, for the page's column pickers."""
    dates = load(Path(path))
    df = dates.frame
    return {
        "columns": list(df.columns),
        "rows": int(len(df)),
        "sample": df.head(sample).to_dict(orient="records"),
        "encoding": dates.encoding,
        "delimiter": dates.delimiter,
    }


def read_dates(path: Path, filename_column: str, date_column: str) -> pd.DataFrame:
    """The two chosen columns as strings, in file order."""
    df = load(path).frame
    missing = [c for c in (filename_column, date_column) if c not in df.columns]
    if missing:
        raise DatesError(f"Column '{missing[0]}' is not in the dates CSV (columns: {', '.join(df.columns)})")
    return df[[filename_column, date_column]]


def parse_dates(values: pd.Series) -> pd.Series:
    """Each value as a UTC timestamp (a value without a zone is taken as UTC), ``NaT`` when it is no date.

    Never raises: ISO 8601 is parsed vectorised, the rest one by one (``format="mixed"``).
    """
    text = values.astype(str).str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    rest = parsed.isna() & (text != "")
    if rest.any():
        parsed[rest] = pd.to_datetime(text[rest], format="mixed", errors="coerce", utc=True)
    return parsed


def date_problems(path: Path, date_column: str) -> list[str]:
    """Why the date column cannot be used as a whole (empty when it can); single bad dates are not listed."""
    df = load(path).frame
    if date_column not in df.columns:
        return []
    text = df[date_column].astype(str).str.strip()
    filled = text[text != ""]
    if filled.empty:
        return [f"Date column '{date_column}' of the dates CSV is empty"]
    ok = parse_dates(filled).notna()
    if not ok.any():
        first = filled.index[0]
        return [f"Date column '{date_column}' holds no dates (line {first + 2}: '{filled.iloc[0][:40]}'); "
                "choose the column with the dates"]
    dated = filled[ok]
    zoned = dated.str.contains(_ZONE)
    if zoned.any() and not zoned.all():
        a, b = dated[zoned].index[0], dated[~zoned].index[0]
        return [f"Date column '{date_column}' mixes dates with a time zone (line {a + 2}: '{text[a]}') and "
                f"without (line {b + 2}: '{text[b]}'); write them all the same way"]
    return []
