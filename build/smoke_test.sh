#!/usr/bin/env bash
# Smoke test of a built bundle against the same steps run from source.
#
#   build/smoke_test.sh [BUNDLE_DIR]      (default dist/radfeat)
#
# 1. `radfeat --version` from the bundle (best of 3 timings) equals the source version;
# 2. `radfeat models add` of a small random TorchXRayVision DenseNet (made with the source venv);
# 3. a headless `radfeat extract` of synthetic patient folders: first run (includes the first-use ONNX
#    export through the bundled torch + TorchXRayVision) and a second run (cached export), timed;
# 4. the same add + extract from source; the two CSVs must agree (same columns and rows, numbers
#    within 1e-6; the source run is the reference on the CPU);
# 5. `radfeat serve` from the bundle serves the real page (frontend packaged) and answers JSON-RPC;
# 6. `radfeat models import FOLDER`, once cli.py has that subcommand.
# Bundle commands run with a scrubbed environment (no PATH to the venv, no PYTHONPATH, a fresh HOME)
# and, where `unshare -n` is allowed, in a network namespace with no network at all.
#
# Environment: PYTHON (source interpreter, default .venv/bin/python), SMOKE_KEEP=1 keeps the work folder,
# SMOKE_DEVICE=cuda runs the bundle's extractions with --device cuda (GPU bundle on a GPU machine; the
# source run stays on the CPU), SMOKE_TOL overrides the 1e-6 tolerance (GPU convolutions differ ~1e-5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle_dir=$(cd "${1:-$root/dist/radfeat}" && pwd)
exe="$bundle_dir/radfeat"
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$exe" ] || { echo "smoke: no bundle executable at $exe (run build/build_bundle.sh)" >&2; exit 2; }
[ -x "$py" ] || { echo "smoke: no source interpreter at $py" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/radfeat-smoke.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/home-bundle" "$work/home-source" "$work/userhome"

offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); net="no network (unshare -n)"; else net="network namespace unavailable: ran with the host network"; fi

# run the bundle as a workstation would: nothing from this checkout or its venv in the environment
bundle() {
  env -i PATH=/usr/bin:/bin HOME="$work/userhome" LANG=C.UTF-8 TMPDIR="$work" \
    RADFEAT_HOME="$work/home-bundle" "${offline[@]}" "$exe" "$@"
}
source_run() { RADFEAT_HOME="$work/home-source" "$py" -m radfeat "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
step() { printf '\n== %s\n' "$*"; }

step "bundle: $bundle_dir ($(du -sh "$bundle_dir" | cut -f1)); $net"
if [ -e "$bundle_dir/_internal/torchvision" ]; then echo "smoke: torchvision is in the bundle" >&2; exit 1; fi

step "--version"
want="radfeat $("$py" -c 'import radfeat; print(radfeat.__version__)')"
best=""
for _ in 1 2 3; do
  t0=$(now); got=$(bundle --version); t1=$(now)
  t=$(secs "$t0" "$t1"); best=$(awk -v a="${best:-999}" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
done
echo "$got"
[ "$got" = "$want" ] || { echo "smoke: bundle says '$got', source says '$want'" >&2; exit 1; }
version_s=$best

step "test data: a small random TorchXRayVision DenseNet and synthetic patient folders (source venv)"
"$py" - "$work" <<'EOF'
import sys
from pathlib import Path

from radfeat.synthetic import make_dataset, random_checkpoint

work = Path(sys.argv[1])
random_checkpoint(work / "tiny.pt", seed=3, small=True)
paths = make_dataset(work / "images", n_patients=3, per_folder=2, depth=1, size=(320, 256), seed=5)
# two compressed DICOMs (RLE, extension-less; JPEG 2000): the bundle must carry pydicom's decoders and the
# pylibjpeg plugins it finds through entry points, or these rows go missing and the tables below differ
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid

for name, uid, plugin in (("IM0001", RLELossless, ""), ("j2k.dcm", JPEG2000Lossless, "pylibjpeg")):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    arr = np.random.default_rng(len(name)).integers(0, 4096, (256, 200), dtype=np.uint16)
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 256, 200, 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = arr.tobytes()
    ds.compress(uid, encoding_plugin=plugin)
    ds.save_as(paths[0].parent / name, enforce_file_format=True)
print(f"{len(paths)} images + 2 DICOMs, checkpoint {(work / 'tiny.pt').stat().st_size} bytes")
EOF

step "models add (bundle)"
bundle models add smoke-tiny "$work/tiny.pt"
bundle models list | grep -q '^smoke-tiny ' || { echo "smoke: smoke-tiny not listed" >&2; exit 1; }

extract_args=(extract "$work/images" --weights smoke-tiny --threads 2 --batch-size 4 --quiet)
device=${SMOKE_DEVICE:-cpu}
tol=${SMOKE_TOL:-1e-6}
step "extract (bundle, first run: includes the ONNX export; --device $device)"
t0=$(now); bundle "${extract_args[@]}" --device "$device" --output "$work/bundle.csv"; t1=$(now)
first_s=$(secs "$t0" "$t1")
step "extract (bundle, second run: export cached)"
t0=$(now); bundle "${extract_args[@]}" --device "$device" --output "$work/bundle2.csv" --no-resume; t1=$(now)
second_s=$(secs "$t0" "$t1")

step "the same from source"
source_run models add smoke-tiny "$work/tiny.pt"
t0=$(now); source_run "${extract_args[@]}" --device cpu --output "$work/source.csv"; t1=$(now)
source_first_s=$(secs "$t0" "$t1")

step "compare bundle vs source tables (tolerance $tol)"
"$py" - "$work/bundle.csv" "$work/source.csv" "$work/bundle2.csv" "$tol" <<'EOF'
import sys

import numpy as np
import pandas as pd

ref = pd.read_csv(sys.argv[2])
assert {"IM0001", "j2k.dcm"} <= set(ref["filename"]), "the source run lost the DICOM rows"
tol = float(sys.argv[4])
for path in (sys.argv[1], sys.argv[3]):
    got = pd.read_csv(path)
    assert list(got.columns) == list(ref.columns), "columns differ"
    assert len(got) == len(ref) > 0, f"{len(got)} rows vs {len(ref)}"
    num = [c for c in ref.columns if pd.api.types.is_numeric_dtype(ref[c])]
    other = [c for c in ref.columns if c not in num]
    assert got[other].astype(str).equals(ref[other].astype(str)), "non-numeric columns differ"
    diff = float(np.max(np.abs(got[num].to_numpy(float) - ref[num].to_numpy(float))))
    assert diff <= tol, f"max |bundle - source| = {diff:.3g} > {tol:g}"
    print(f"{path}: {len(got)} rows x {len(num)} numeric columns, max |bundle - source| = {diff:.3g}")
EOF

step "serve (bundle): real page and JSON-RPC"
# host network here: the server binds 127.0.0.1 only, and a fresh namespace's loopback is down
env -i PATH=/usr/bin:/bin HOME="$work/userhome" LANG=C.UTF-8 RADFEAT_HOME="$work/home-bundle" \
  "$exe" serve --no-browser --workspace "$work" >"$work/serve.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 150); do
  url=$(sed -n 's/^Open \(http[^ ]*\)$/\1/p' "$work/serve.log" | head -1)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$url" ] || { cat "$work/serve.log" >&2; echo "smoke: serve did not start" >&2; exit 1; }
page=$(curl -fsS "$url")
echo "$page" | grep -q "<title>radfeat · Image Extraction</title>" \
  || { echo "smoke: the served page is not frontend/index.html" >&2; exit 1; }
base=${url%%/\?*}
token=${url##*token=}
curl -fsS -o /dev/null "$base/app.js" || { echo "smoke: app.js not served" >&2; exit 1; }
curl -fsS -o /dev/null "$base/js/rpc.js" || { echo "smoke: the page's modules (js/) are not served" >&2; exit 1; }
rpc=$(curl -fsS -H "X-Radfeat-Token: $token" -H 'Content-Type: application/json' \
  -d '{"jsonrpc": "2.0", "id": 1, "method": "version", "params": {}}' "$base/rpc")
echo "$rpc"
echo "$rpc" | grep -q '"radfeat"' || { echo "smoke: JSON-RPC version failed" >&2; exit 1; }
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

if bundle models --help 2>/dev/null | grep -q '\bimport\b'; then
  step "models import FOLDER (bundle)"
  "$py" - "$work" <<'EOF'
import json, sys
from pathlib import Path

from radfeat.weights.checkpoint import sha256_file

work = Path(sys.argv[1])
raw = json.loads(Path(__import__("radfeat.modeldata", fromlist=["x"]).__file__).with_name("catalog.json").read_text())
entry = raw["weights"][0]
entry["sha256"], entry["op_threshs"] = sha256_file(work / "tiny.pt"), None
entry["size"] = (work / "tiny.pt").stat().st_size  # the pinned entries also carry the release file's size
(work / "catalog.json").write_text(json.dumps(raw))
(work / "usb").mkdir()
(work / "usb" / entry["file"]).write_bytes((work / "tiny.pt").read_bytes())
(work / "entry").write_text(entry["name"])
EOF
  env -i PATH=/usr/bin:/bin HOME="$work/userhome" LANG=C.UTF-8 RADFEAT_HOME="$work/home-import" \
    RADFEAT_CATALOG="$work/catalog.json" "${offline[@]}" "$exe" models import "$work/usb"
  env -i PATH=/usr/bin:/bin HOME="$work/userhome" LANG=C.UTF-8 RADFEAT_HOME="$work/home-import" \
    RADFEAT_CATALOG="$work/catalog.json" "${offline[@]}" "$exe" models list | grep "^$(cat "$work/entry")" | grep -q yes
else
  step "models import: not in this build's CLI yet (skipped)"
fi

step "results"
echo "bundle size:                     $(du -sh "$bundle_dir" | cut -f1) ($(du -sb "$bundle_dir" | cut -f1) bytes)"
echo "--version:                       ${version_s}s (best of 3)"
echo "first extraction (with export):  ${first_s}s  (source: ${source_first_s}s)"
echo "second extraction (cached):      ${second_s}s"
echo "smoke test passed"
