"""The page's settings, kept per workspace in ``$RADFEAT_HOME`` (the page's own storage is per port, and every
launch of radfeat gets a new port, so a restarted backend would otherwise open a page that forgot everything).

``page_settings()`` → ``{workspace, settings}`` (``settings`` is ``None`` the first time);
``save_page_settings(settings)`` stores a JSON object of at most 64 KB, written atomically.  The file is named after
a hash of the workspace path, so no path from the page chooses where it is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from radfeat.server.rpc import INVALID_PARAMS, RpcError

MAX_BYTES = 64 * 1024


class PageSettings:
    NAMES = ["page_settings", "save_page_settings"]

    def __init__(self, workspace: Path):
        self.workspace = Path(workspace)

    def _path(self) -> Path:
        from radfeat.weights.home import home

        digest = hashlib.sha256(str(self.workspace).encode("utf-8")).hexdigest()[:24]
        return home() / "page-settings" / f"{digest}.json"

    def page_settings(self) -> dict[str, Any]:
        """The settings last saved for this workspace (``None`` when there are none or they cannot be read)."""
        try:
            data = json.loads(self._path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        ok = isinstance(data, dict) and data.get("workspace") == str(self.workspace)
        return {"workspace": str(self.workspace), "settings": data.get("settings") if ok else None}

    def save_page_settings(self, settings: dict) -> dict[str, Any]:
        """Store the page's settings for this workspace (a JSON object, 64 KB at most)."""
        if not isinstance(settings, dict):
            raise RpcError(INVALID_PARAMS, "Parameter 'settings' of save_page_settings must be an object",
                           {"parameter": "settings"})
        text = json.dumps({"workspace": str(self.workspace), "settings": settings}, allow_nan=False)
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise RpcError(INVALID_PARAMS, f"Page settings are limited to {MAX_BYTES // 1024} KB",
                           {"parameter": "settings"})
        from radfeat.output.atomic import write_text_atomic

        write_text_atomic(self._path(), text)  # creates its folder in the home, never through a link
        return {"saved": True}
