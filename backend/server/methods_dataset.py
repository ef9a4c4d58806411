"""RPC methods of the dataset view: what a table holds, a 2-D map of its rows, one column, one row's image.

All of them read only the columns they need, in chunks (:mod:`radfeat.output.tabular`), and
page their answers with ``offset``/``limit`` so a 100 000-row table costs memory in proportion
to the page asked for.  The projection itself is computed once per file version
(:mod:`radfeat.output.projection`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from radfeat.extractors import registry
from radfeat.output.columns import is_text_column
from radfeat.output.projection import ProjectionError, projection
from radfeat.output.tabular import column_kinds, read_values, table_shape
from radfeat.server.row_images import RowImageError, image_of_row
from radfeat.server.rpc import CANNOT_READ, INVALID_PARAMS, NOT_FOUND, RpcError

MAX_POINTS = 100_000
TABLE_SUFFIXES = (".csv", ".parquet", ".arff")


def _page_params(method: str, offset: int, limit: int, most: int) -> None:
    if offset < 0:
        raise RpcError(INVALID_PARAMS, f"Parameter 'offset' of {method} must not be negative", {"parameter": "offset"})
    if not 1 <= limit <= most:
        raise RpcError(INVALID_PARAMS, f"Parameter 'limit' of {method} must be between 1 and {most}",
                       {"parameter": "limit"})


def _provenance(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.with_name(path.stem + ".json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _numeric_columns(path: Path, columns: tuple[str, ...]) -> dict[str, bool]:
    """Which columns hold numbers: the Parquet schema, or Arrow's reading of the first CSV block."""
    import pyarrow as pa

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(path).schema_arrow
        return {f.name: pa.types.is_integer(f.type) or pa.types.is_floating(f.type) for f in schema}
    if path.suffix == ".arff":
        return {c: not is_text_column(c) for c in columns}
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20))
    return {f.name: pa.types.is_integer(f.type) or pa.types.is_floating(f.type) for f in reader.schema}


class DatasetMethods:
    NAMES = ["table_info", "project_table", "column_values", "row_image"]

    def __init__(self, api: Any):
        self.api = api

    def _table(self, path: str) -> Path:
        resolved = self.api.policy.check_read(path)
        if resolved.suffix.lower() in TABLE_SUFFIXES:
            fh, resolved = self.api._open(path)  # what was opened is checked (no link, no FIFO, inside the roots)
            fh.close()
        elif not resolved.is_file():
            raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path})
        if resolved.suffix.lower() not in TABLE_SUFFIXES:
            raise RpcError(CANNOT_READ, f"{resolved.name} is not a result table (CSV, Parquet or ARFF)",
                           {"path": path})
        return resolved

    def _shape(self, path: Path) -> Any:
        try:
            return table_shape(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read the table {path.name}: {exc}", {"path": str(path)}) from None

    def _spill_dir(self) -> Path | None:
        """The workspace's output folder, for the projection's temporary file; None if it leads elsewhere."""
        folder = self.api.policy.output_dir
        try:
            from radfeat.output.atomic import ensure_folder

            ensure_folder(folder, self.api.policy.workspace)  # never created through a planted link
            inside = folder.resolve().is_relative_to(self.api.policy.workspace)
        except OSError:
            return None
        return folder if inside else None

    def table_info(self, path: str) -> dict[str, Any]:
        """Columns, row count, each column's kind, the extraction type and whether rows lead to images."""
        table = self._table(path)
        shape = self._shape(table)
        prov = _provenance(table)
        try:
            numeric = _numeric_columns(table, shape.columns)
        except (OSError, ValueError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read the table {table.name}: {exc}", {"path": path}) from None
        kinds = column_kinds(shape.columns, numeric)
        date_column = ((prov.get("options") or {}).get("master_table") or {}).get("date_column")
        if date_column in kinds:
            kinds[date_column] = "id"
        image_root = (prov.get("options") or {}).get("input")
        has_files = "filename" in shape.columns or bool(date_column)
        return {"path": str(table), "columns": list(shape.columns), "total": shape.total, "kinds": kinds,
                "type": prov.get("type") or registry.default_type(), "has_images": bool(image_root and has_files),
                "image_root": image_root, "master_table": bool(date_column)}

    def project_table(self, path: str, method: str = "pca", columns: str = "dense", offset: int = 0,
                      limit: int = 20000) -> dict[str, Any]:
        """2-D points of the rows (PCA by default), computed once per file version, paged."""
        _page_params("project_table", offset, limit, MAX_POINTS)
        table = self._table(path)
        try:
            proj = projection(table, method, columns, self._spill_dir())
        except ProjectionError as exc:
            code = INVALID_PARAMS if "must be one of" in str(exc) else CANNOT_READ
            raise RpcError(code, str(exc), {"path": path}) from None
        except (OSError, ValueError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot project the table {table.name}: {exc}", {"path": path}) from None
        page = proj.points[offset:offset + limit]
        answer = {"method": proj.method, "total": int(proj.points.shape[0]), "offset": offset,
                  "points": page.round(6).tolist(), "row_index": list(range(offset, offset + len(page))),
                  "columns_used": len(proj.columns)}
        if proj.method == "pca":
            answer["explained_variance"] = list(proj.explained_variance)
            answer["explained_variance_ratio"] = list(proj.explained_variance_ratio)
        return answer

    def column_values(self, path: str, column: str, offset: int = 0, limit: int = 20000) -> dict[str, Any]:
        """Values of one column (numbers or text), ``offset … offset + limit``, read in chunks."""
        _page_params("column_values", offset, limit, MAX_POINTS)
        table = self._table(path)
        shape = self._shape(table)
        if column not in shape.columns:
            raise RpcError(NOT_FOUND, f"Column '{column}' is not in {table.name}", {"column": column})
        numeric = _numeric_columns(table, shape.columns).get(column, False)
        try:
            values = read_values(table, column, offset, limit, numeric)
        except (OSError, ValueError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read column '{column}' of {table.name}: {exc}",
                           {"path": path}) from None
        return {"column": column, "values": values, "total": shape.total, "offset": offset, "numeric": numeric}

    def row_image(self, path: str, row: int, size: int = 256) -> dict[str, Any]:
        """A thumbnail of the image behind row ``row`` (resolved from the levels and file name, or for a
        master table from its patient and date through the dates CSV, below the run's input folder)."""
        table = self._table(path)
        shape = self._shape(table)
        if not 0 <= row < shape.total:
            raise RpcError(INVALID_PARAMS, f"Parameter 'row' of row_image must be between 0 and {shape.total - 1}",
                           {"parameter": "row"})
        try:
            image = image_of_row(table, shape.columns, row, _provenance(table))
        except RowImageError as exc:
            raise RpcError(NOT_FOUND, str(exc), {"path": path, "row": row}) from None
        self.api.policy.choose(image)  # the one image behind the row, so thumbnail may read it
        return {**self.api.thumbnail(str(image), size), "image": str(image), "row": row}
