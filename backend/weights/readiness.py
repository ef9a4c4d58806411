"""Weight readiness: the file a run needs is on disk (downloaded on first use), before any image is read.

The extractors call :func:`ensure_weights` from their ``prepare()``; ``radfeat models export`` does
too.  It lives with the weights, not with the run loop, so that nothing imports back from
:mod:`radfeat.pipeline.run`.
"""

from __future__ import annotations

from collections.abc import Callable

from radfeat.errors import OptionsError, Problem
from radfeat.weights.catalog import WeightSet
from radfeat.weights.download import fetch


def ensure_weights(wset: WeightSet, log: Callable[[str], None]) -> None:
    """Download the weight set's file when it is missing and the catalog knows where from."""
    if wset.downloaded:
        return
    if not wset.url:
        raise OptionsError([Problem("weights", f"Weights file for '{wset.name}' is missing: {wset.path}")])

    log(f"Downloading {wset.name} weights (first use)...")
    fetch(wset, log=log)
