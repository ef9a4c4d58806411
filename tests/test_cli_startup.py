"""``radfeat --version`` and ``--help`` start without the heavy libraries; every command is dispatched.

The parser is built from light modules only and a command's code is imported through
:data:`radfeat.cli.COMMANDS` when it runs (see :mod:`radfeat.cli`).  Checked by the modules a fresh
``python -X importtime -m radfeat …`` imports, never by timing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from radfeat import cli

HEAVY = ("pandas", "pyarrow", "pydicom", "scipy", "onnxruntime", "torch", "numpy", "PIL", "flask", "ray", "sklearn")


def _imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m radfeat ARGS``; its output and the top-level packages it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "radfeat", *args], capture_output=True,
                          text=True, env=os.environ.copy(), timeout=300)
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in proc.stderr.splitlines() if line.startswith("import time:") and line.count("|") == 2}
    return proc, names


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("extract", "--help"), ("models", "--help")])
def test_version_and_help_import_no_heavy_library(args):
    proc, names = _imported(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "radfeat" in names and "argparse" in names  # the import log was read
    assert not names & set(HEAVY), f"radfeat {' '.join(args)} imported {sorted(names & set(HEAVY))}"


def test_extract_help_lists_every_type_and_its_options():
    """The help comes from the declarations, without importing any extractor."""
    proc, _ = _imported("extract", "--help")
    help_text = " ".join(proc.stdout.split())
    for name in ("densenet", "encoder", "onnx", "fractal", "saliency", "anatomy"):
        assert name in help_text
    for flag in ("--max-box", "--saliency-methods", "--lime-samples", "--anatomy-masks"):
        assert flag in help_text


def test_every_command_of_the_parser_is_dispatched():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    assert set(sub.choices) == set(cli.COMMANDS)
    for name in cli.COMMANDS:
        assert callable(cli.command(name)), name


def test_the_extractor_of_a_type_is_imported_on_first_use():
    code = ("import sys; from radfeat.extractors import registry; registry.discover(); "
            "assert 'radfeat.extractors.fractal' not in sys.modules; "
            "cls = registry.get('fractal').extractor_class(); "
            "print(cls.__module__, cls.kind, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["radfeat.extractors.fractal", "fractal", "True"]


def test_every_declared_extractor_resolves_to_its_type():
    from radfeat.extractors import registry
    from radfeat.extractors.base import Extractor

    for kind in registry.types():
        cls = kind.extractor_class()
        assert issubclass(cls, Extractor) and cls.kind == kind.name, kind.name
        assert cls.__module__ == kind.implemented_in
