"""Which weight sets this machine can run now, a usable default, and whether a download would work.

* :func:`available` — the weights file is in ``$RADFEAT_HOME`` (downloaded, imported or added);
* :func:`origin` — ``catalog`` (TorchXRayVision's published sets), ``user`` (a user's own
  checkpoint) or ``onnx`` (a user's ONNX model), so the page never calls a user's file "downloaded";
* :func:`usable_default` — the weight set a run of an extraction type should use when the
  requested (or catalog default) one is missing here;
* :func:`probe` — one small HEAD (or 1-byte range) request to the weight set's URL, at most a
  few seconds, nothing downloaded: can the page offer a download?
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from radfeat.extractors import registry
from radfeat.weights.catalog import Catalog, WeightSet

PROBE_TIMEOUT = 5.0


def available(wset: WeightSet) -> bool:
    return wset.downloaded


def origin(wset: WeightSet) -> str:
    if wset.source == "catalog":
        return "catalog"
    return "onnx" if wset.architecture in ("onnx", "segmentation-onnx") else "user"


def _fits(wset: WeightSet, kind: registry.ExtractionType) -> bool:
    return registry.kind_of(wset.architecture) in kind.weights_kinds


def usable_default(kind: str | None = None, catalog: Catalog | None = None) -> str | None:
    """The preferred weight set for the extraction type ``kind`` (default: the default type) that is
    present here, or None when none is (or the type uses no weights).

    Preference: the type's own default (its declared one, else the catalog's), then the other catalog
    sets in catalog order, then the user's registered ones.
    """
    chosen = registry.get(kind or registry.default_type())
    if chosen is None or not chosen.uses_weights:
        return None
    catalog = catalog or Catalog()
    preferred = chosen.default_weights or (catalog.default if chosen.catalog_default else None)
    entries = catalog.entries()
    ordered = ([wset for wset in entries if wset.name == preferred] + [wset for wset in entries if wset.source == "catalog"]
               + [wset for wset in entries if wset.source != "catalog"])
    return next((wset.name for wset in ordered if _fits(wset, chosen) and available(wset)), None)


@dataclass(frozen=True)
class ProbeResult:
    name: str
    reachable: bool
    size: int | None
    message: str

    def to_json(self) -> dict:
        return {"name": self.name, "reachable": self.reachable, "size": self.size, "message": self.message}


def _size_of(resp) -> int | None:
    rng = resp.headers.get("Content-Range", "")
    if "/" in rng and rng.rsplit("/", 1)[1].isdigit():
        return int(rng.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() and resp.status_code == 200 else None


def probe(wset: WeightSet, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Ask the weight set's server whether the file is there (HEAD, else a 1-byte GET); nothing is saved."""
    import requests

    if not wset.url:
        return ProbeResult(wset.name, False, None, f"'{wset.name}' has no download address; import its weight file")
    host = urlsplit(wset.url).netloc or wset.url
    try:
        resp = requests.head(wset.url, allow_redirects=True, timeout=timeout)
        if resp.status_code >= 400:  # some servers refuse HEAD: ask for the first byte instead
            with requests.get(wset.url, headers={"Range": "bytes=0-0"}, stream=True, allow_redirects=True,
                              timeout=timeout) as resp:
                pass
    except requests.Timeout:
        return ProbeResult(wset.name, False, None, f"{host} did not answer within {timeout:g} s (no network here?); "
                                                 "import the weight file instead")
    except requests.ConnectionError:
        return ProbeResult(wset.name, False, None, f"Cannot reach {host} (no network here?); "
                                                 "import the weight file instead")
    except requests.RequestException as exc:
        return ProbeResult(wset.name, False, None, f"Cannot ask {host} for {wset.name}: {exc}")
    if resp.status_code >= 400:
        return ProbeResult(wset.name, False, None, f"{host} answered HTTP {resp.status_code} for {wset.name}; "
                                                 "import the weight file instead")
    size = _size_of(resp) or wset.size
    words = f" ({size / 1e6:.0f} MB)" if size else ""
    return ProbeResult(wset.name, True, size, f"{wset.name} can be downloaded from {host}{words}")
