"""radfeat's fractal features equal the numbers of the upstream Image-Feature-Extraction-Tools code.

``tests/fixtures/fractal_upstream.json`` holds what upstream's own Python (``Fractal.GlidingBox``,
``Curve``; commit recorded in the file) computed for the two images that
``tests/fixtures/fractal_upstream.py`` makes; see that script for the name mapping.  The slow literal
implementation in ``tests/fractal_reference.py`` is checked against the same numbers, so the three
agree.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from radfeat.extractors.fractal_math import fractal_features
from radfeat.pipeline.images import read_rgb as load_rgb

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from fractal_upstream import FIXTURE, write_pngs  # noqa: E402

UPSTREAM = json.loads(FIXTURE.read_text())
TOL = 1e-13


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    return write_pngs(tmp_path_factory.mktemp("upstream"))


def _compare(got: dict[str, float], want: dict[str, float | None]) -> None:
    for name, value in want.items():
        if value is None:  # upstream raises (zero denominator); radfeat gives NaN
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(value, rel=TOL, abs=TOL), name


@pytest.mark.parametrize("name", sorted(UPSTREAM["images"]))
def test_radfeat_equals_upstream(pngs, name):
    got = fractal_features(load_rgb(pngs[name]), UPSTREAM["max_box"], workers=2)
    want = UPSTREAM["images"][name]
    assert set(got) == set(want)  # every radfeat value is checked
    _compare(got, want)


def test_slow_reference_equals_upstream(pngs):
    from fractal_reference import reference_features

    for name, path in pngs.items():
        got = reference_features(np.asarray(load_rgb(path)), UPSTREAM["max_box"])
        _compare(got, UPSTREAM["images"][name])


def test_fixture_records_its_source():
    src = UPSTREAM["upstream"]
    assert src["repository"] == "leonardohcl/Image-Feature-Extraction-Tools" and len(src["commit"]) == 40
