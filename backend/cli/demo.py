"""``radfeat demo``: a small synthetic dataset, extracted."""

from __future__ import annotations

import argparse
from pathlib import Path

from radfeat.demo import run_demo


def run(a: argparse.Namespace) -> int:
    return run_demo(Path(a.dir), weights=a.weights, n_patients=a.patients)
