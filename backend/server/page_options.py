"""Extraction options sent by the page: workspace fixed, paths resolved and confined, every problem listed.

The page sends the same flat options as the CLI; this adds what only a browser client needs:
the workspace cannot be changed, relative paths are taken from the workspace, selected folders
must lie below the input folder and the output must stay in the workspace's output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radfeat.errors import OptionsError, Problem
from radfeat.options import FORMATS, ExtractOptions, validate, validate_filename
from radfeat.output.paths import path_problem
from radfeat.server.security import PathDenied, PathInvalid, PathPolicy


def prepare_options(raw: dict[str, Any], policy: PathPolicy) -> tuple[ExtractOptions | None, list[Problem]]:
    """Checked :class:`ExtractOptions` (None when they cannot be built) and every problem (the CLI's words)."""
    raw = dict(raw)
    problems = _workspace_problems(raw, policy)
    raw["workspace"] = str(policy.workspace)
    if raw.get("master_table") is not None and not isinstance(raw["master_table"], dict):
        return None, [*problems, Problem("master_table", "Master table options must be an object")]
    try:
        opts = ExtractOptions.from_dict(raw)
    except OptionsError as exc:
        return None, [*problems, *exc.problems]
    except TypeError as exc:
        return None, [*problems, Problem("options", f"Options could not be read: {exc}")]
    problems.extend(_resolve_paths(opts, policy))
    problems.extend(_output_problems(opts, policy))  # before validation, which checks the output for links
    try:
        problems.extend(validate(opts))
    except (TypeError, AttributeError, ValueError) as exc:
        problems.append(Problem("options", f"Options have the wrong types: {exc}"))
    problems.extend(_select_problems(opts, policy))
    return opts, problems


def _workspace_problems(raw: dict[str, Any], policy: PathPolicy) -> list[Problem]:
    given = raw.get("workspace")
    if given in (None, "") or (isinstance(given, str) and policy.resolve(given) == policy.workspace):
        return []
    return [Problem("workspace", f"The workspace is fixed when radfeat starts ({policy.workspace}); "
                                 "it cannot be changed from here")]


def _resolve_paths(opts: ExtractOptions, policy: PathPolicy) -> list[Problem]:
    """Paths from the page: relative ones are taken from the workspace, all are made absolute."""
    problems = []
    for owner, key, label in ((opts, "input", "input"), (opts.master_table, "dates_csv", "master_table.dates_csv")):
        value = None if owner is None else getattr(owner, key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            problems.append(Problem(label, "Must be a path"))
            setattr(owner, key, "")
            continue
        try:
            setattr(owner, key, str(policy.resolve(value)))
        except PathInvalid as exc:  # too long, NUL: a problem for that field, not an internal error
            problems.append(Problem(label, str(exc)))
            setattr(owner, key, "")
    if isinstance(opts.head, list):  # heads are read: the workspace (DATA/models) or a chosen folder
        opts.head = [_head_path(h, policy, problems) for h in opts.head]
    return problems


def _head_path(head: Any, policy: PathPolicy, problems: list[Problem]) -> Any:
    """A head file from the page, resolved; refused outside the workspace and the chosen folders."""
    if not isinstance(head, str) or not head:
        return head  # validation words the problem
    try:
        return str(policy.check_read(head))
    except PathDenied:
        problems.append(Problem("head", f"Head model must be in the workspace or a chosen folder: {head}"))
        return head


def _select_problems(opts: ExtractOptions, policy: PathPolicy) -> list[Problem]:
    if opts.select is None:
        return []
    if not isinstance(opts.select, list) or not all(isinstance(s, str) for s in opts.select):
        return [Problem("select", "Selected folders must be a list of folder paths")]
    if not (opts.input and isinstance(opts.input, str)):
        return []
    problems = []
    for sel in opts.select:
        try:
            policy.check_below(Path(opts.input), sel)
        except PathDenied:
            problems.append(Problem("select", f"Selected folder '{sel}' is not below the input folder"))
    return problems


def _output_problems(opts: ExtractOptions, policy: PathPolicy) -> list[Problem]:
    """An explicit output must be a valid file name in the workspace's output folder.

    Its last part is never followed: a link planted there is refused by validation, not written through.
    """
    if opts.output in (None, ""):
        opts.output = None
        return []
    problem = None
    if not isinstance(opts.output, str):
        problem = Problem("output", "Output must be a file name in the workspace")
    elif path_problem(opts.output, "Output"):
        problem = Problem("output", path_problem(opts.output, "Output"))
    else:
        out = policy.resolve(Path(opts.output).parent) / Path(opts.output).name
        name_problem = validate_filename(out.name, opts.format if opts.format in FORMATS else "csv")
        if not policy.output_allowed(out):
            problem = Problem("output", f"Output must be written to {policy.output_dir}")
        elif name_problem:
            problem = Problem("filename", name_problem)
        else:
            opts.output = str(out)
            return []
    opts.output = None  # the rest of validation runs on the default name
    return [problem]
