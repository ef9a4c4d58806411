"""ONNX "heads": a fitted model that ``radfeat extract --head`` runs on the features of each row.

:func:`to_onnx` converts the scikit-learn pipeline with skl2onnx in float64 (so its scores equal
``predict_proba`` to ~1e-15), puts the median imputation in front (``IsNaN`` → ``Where``) and a
``score`` output behind (the positive class's probability), and records in the model's metadata
what it needs: the feature column names in order, the target, the classes and the validation.

:class:`Head` is the run-time side: ONNX Runtime only, no scikit-learn.  The metadata of a file
given by the user is data, never code: it is parsed as JSON and checked field by field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.errors import InvalidInput

META_KEY = "radfeat.head"
INPUT = "features"
OUTPUT = "score"
_SAFE = re.compile(r"[^A-Za-z0-9_]+")


class HeadError(InvalidInput, ValueError):
    """An ONNX file that is not a usable radfeat head."""


def to_onnx(model: Any, columns: list[str], meta: dict[str, Any]) -> bytes:
    """The fitted :class:`~radfeat.fit.validation.FittedModel` as a serialised ONNX head."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    clf = model.pipeline.steps[-1][1]
    proto = skl_to_onnx(model.pipeline, initial_types=[("imputed", DoubleTensorType([None, len(columns)]))],
                        options={id(clf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    g = proto.graph
    probs = next(o.name for o in g.output if o.name != "label")
    g.initializer.extend([numpy_helper.from_array(model.medians.astype(np.float64), "radfeat_medians"),
                          numpy_helper.from_array(np.array([1], dtype=np.int64), "radfeat_positive")])
    g.node.insert(0, helper.make_node("IsNaN", [INPUT], ["radfeat_isnan"]))
    g.node.insert(1, helper.make_node("Where", ["radfeat_isnan", "radfeat_medians", INPUT], ["imputed"]))
    g.node.append(helper.make_node("Gather", [probs, "radfeat_positive"], ["radfeat_score_2d"], axis=1))
    g.node.append(helper.make_node("Squeeze", ["radfeat_score_2d", "radfeat_positive"], [OUTPUT]))
    del g.input[:]
    g.input.append(helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, [None, len(columns)]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, [None]))
    helper.set_model_props(proto, {META_KEY: json.dumps({**meta, "columns": columns})})
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def column_name(name: str) -> str:
    """A head name as it appears in a column: letters, digits and ``_``."""
    return _SAFE.sub("_", name).strip("_") or "head"


@dataclass
class Head:
    """A head loaded for scoring rows."""

    path: Path
    name: str
    columns: list[str]
    meta: dict[str, Any]
    session: Any

    @classmethod
    def load(cls, path: Path | str, threads: int = 1) -> Head:
        import onnxruntime as ort

        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise HeadError(f"Head model not found: {path}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
            raise HeadError(f"{path.name} is not a readable ONNX model: {str(exc).splitlines()[0][:200]}") from None
        meta = _parse_meta(session.get_modelmeta().custom_metadata_map.get(META_KEY), path.name)
        inputs, outputs = session.get_inputs(), [o.name for o in session.get_outputs()]
        if len(inputs) != 1 or inputs[0].name != INPUT or OUTPUT not in outputs:
            raise HeadError(f"{path.name} does not have a radfeat head's input '{INPUT}' and output '{OUTPUT}'")
        name = column_name(str(meta.get("name") or path.stem))
        return cls(path, name, meta["columns"], meta, session)

    def missing(self, available: list[str]) -> list[str]:
        have = set(available)
        return [c for c in self.columns if c not in have]

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Rows × ``len(columns)`` features (in the head's order) → the positive class's probability."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float64)})[0]


def _parse_meta(text: str | None, label: str) -> dict[str, Any]:
    if not text:
        raise HeadError(f"{label} is not a radfeat head (no '{META_KEY}' metadata; make one with 'radfeat fit')")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise HeadError(f"{label}: the head's metadata is not valid JSON") from None
    cols = meta.get("columns") if isinstance(meta, dict) else None
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c for c in cols):
        raise HeadError(f"{label}: the head's metadata does not list its feature columns")
    return meta
