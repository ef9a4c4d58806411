"""Registers the RPC methods that live outside :mod:`radfeat.server.api` and the browser's 403 page.

:func:`install` is called once by :func:`radfeat.server.app.create_app`.  The method groups:

* :mod:`radfeat.server.methods_setup` — readiness in validation, depths, weights list, restarts;
* :mod:`radfeat.server.methods_weights` — probe, download and import weights from the page;
* :mod:`radfeat.server.methods_fit` — ``radfeat fit`` as a job, its validation and the fitted models;
* :mod:`radfeat.server.methods_dataset` — the dataset view (table info, projection, values, images).
"""

from __future__ import annotations

import html
from typing import Any

from flask import Flask, Response, request
from radfeat.server.methods_dataset import DatasetMethods
from radfeat.server.methods_fit import FitMethods
from radfeat.server.methods_setup import SetupMethods
from radfeat.server.methods_weights import WeightsMethods

FORBIDDEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>radfeat — open the page from radfeat</title>
<style>
body{{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f6f8;color:#1d2733;margin:0;
display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;max-width:34rem;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0002}}
h1{{font-size:1.3rem;margin:0 0 .8rem}} code{{background:#eef1f4;padding:.1rem .35rem;border-radius:4px}}
p.why{{color:#5a6673;font-size:.9rem}}
</style></head>
<body><main><h1>This address needs the link radfeat printed</h1>
<p>radfeat's page only opens with the private link of the running backend, so that no other web page
or program can reach your data.</p>
<ul><li>Desktop app: run <code>radfeat gui</code> — it opens the page in its own window.</li>
<li>Browser: run <code>radfeat serve</code> and open the URL it prints
(<code>http://127.0.0.1:PORT/?token=…</code>), all of it.</li></ul>
<p class="why">{reason}</p></main></body></html>
"""


def install(app: Flask, state: Any) -> None:
    """Register the extra method groups on ``state.dispatcher`` and the styled 403 page on ``app``."""
    for group in (SetupMethods(state.api), WeightsMethods(state.api), DatasetMethods(state.api), FitMethods(state.api)):
        state.dispatcher.register_object(group, group.NAMES)

    @app.after_request
    def _browser_forbidden(resp: Response) -> Response:
        """A browser (Accept: text/html) refused outside /rpc gets a page saying how to open radfeat."""
        if resp.status_code != 403 or request.path == "/rpc" or "text/html" not in request.headers.get("Accept", ""):
            return resp
        reason = html.escape(resp.get_data(as_text=True).strip())
        page = Response(FORBIDDEN_PAGE.format(reason=reason), status=403, mimetype="text/html")
        for key, value in resp.headers.items():
            if key.lower() not in ("content-type", "content-length"):
                page.headers[key] = value
        return page
