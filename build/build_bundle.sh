#!/usr/bin/env bash
# Build the radfeat one-folder bundle with PyInstaller (recipe: build/radfeat.spec).
#
#   build/build_bundle.sh                  CPU bundle  -> dist/radfeat/
#   build/build_bundle.sh --gui            CPU bundle with the desktop window (pywebview + Qt) -> dist/radfeat-gui/
#   build/build_bundle.sh --variant gpu    onnxruntime-gpu bundle -> dist/radfeat-gpu/ (own build venv, see README)
#   build/build_bundle.sh --smoke          ... then run build/smoke_test.sh on the result
#   build/build_bundle.sh --archive        ... and pack dist/radfeat-<version>-linux-<arch>.tar.gz to ship
#   build/build_bundle.sh --no-strip       keep symbol tables in the shared libraries (stripped by default)
#   build/build_bundle.sh --fresh-venv     build from a build venv even when .venv exists (reproducible builds)
#
# Which Python builds it:
#   * cpu: $PYTHON if set, else the project's .venv (scripts/setup) if present (and no --fresh-venv), else a
#     build venv created in build/_work/venv-cpu from pyproject's dependencies (torchvision left out, see
#     radfeat/xrv_compat.py).
#   * gpu: $PYTHON if set, else build/_work/venv-gpu (same dependencies, onnxruntime-gpu instead of onnxruntime).
#   A build venv needs the CPU torch wheel: where pip's configured indexes would pick the CUDA build,
#   set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.  radfeat.spec refuses a CUDA torch.
# PyInstaller itself is installed (pinned, --no-deps) into build/_work/pyinstaller-<version>/ and put on
# PYTHONPATH for the build only, so the interpreter's environment (e.g. the shared .venv) is never modified.
#
# Prints the bundle size and the start-up time of `radfeat --version`.
set -euo pipefail

PYINSTALLER_VERSION=6.22.3
HOOKS_CONTRIB_VERSION=2026.9
ALTGRAPH_VERSION=0.17.5
ORT_GPU_VERSION=${ORT_GPU_VERSION:-1.31.1}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
variant=cpu gui=0 smoke=0 archive=0 strip=1 fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=$2; shift 2 ;;
    --variant=*) variant=${1#*=}; shift ;;
    --gui) gui=1; shift ;;
    --smoke) smoke=1; shift ;;
    --archive) archive=1; shift ;;
    --no-strip) strip=0; shift ;;
    --fresh-venv) fresh=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build_bundle: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$variant" in cpu|gpu) ;; *) echo "build_bundle: --variant cpu or gpu" >&2; exit 2 ;; esac
suffix=""
if [ "$gui" = 1 ]; then suffix=-gui; fi
name=radfeat$([ "$variant" = gpu ] && echo -gpu || true)$suffix
work=build/_work
mkdir -p "$work"
t_start=$(date +%s)

# --- the build interpreter ---------------------------------------------------------------------
make_venv() {  # $1 = folder, $2 = onnxruntime requirement
  local venv=$1 ort=$2
  if [ -x "$venv/bin/python" ] && [ -f "$venv/.radfeat-ready" ]; then return; fi
  echo "build_bundle: creating build venv $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # runtime dependencies from pyproject, onnxruntime swapped as asked, torchvision left out
  mapfile -t reqs < <("$venv/bin/python" - "$ort" <<'EOF'
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = [d for d in p["dependencies"] if not d.startswith("onnxruntime")] + [sys.argv[1]]
deps += [d for d in p["optional-dependencies"]["export"] if not d.startswith("torchvision")]
print("\n".join(deps))
EOF
  )
  local torch_req xrv_req
  torch_req=$(printf '%s\n' "${reqs[@]}" | grep '^torch==')
  xrv_req=$(printf '%s\n' "${reqs[@]}" | grep '^torchxrayvision')
  # torch first and alone, from the CPU index when given, so nothing later can swap it for a CUDA build
  "$venv/bin/python" -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$torch_req"
  mapfile -t others < <(printf '%s\n' "${reqs[@]}" | grep -v '^torchxrayvision')
  "$venv/bin/python" -m pip install -q "${others[@]}" "scikit-image>=0.22" imageio
  # TorchXRayVision without its torchvision requirement (radfeat.xrv_compat stands in for it)
  "$venv/bin/python" -m pip install -q --no-deps "$xrv_req"
  if [ "$gui" = 1 ]; then
    "$venv/bin/python" -m pip install -q "pywebview[qt]>=5"
  fi
  touch "$venv/.radfeat-ready"
}

if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
elif [ "$variant" = cpu ] && [ "$fresh" = 0 ] && [ -x .venv/bin/python ]; then
  py=.venv/bin/python
elif [ "$variant" = cpu ]; then
  make_venv "$work/venv-cpu$suffix" "onnxruntime>=1.17"
  py=$work/venv-cpu$suffix/bin/python
else
  make_venv "$work/venv-gpu$suffix" "onnxruntime-gpu==$ORT_GPU_VERSION"
  py=$work/venv-gpu$suffix/bin/python
fi
echo "build_bundle: $name with $py ($("$py" -c 'import sys, torch, onnxruntime as o; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, onnxruntime {o.__version__}")'))"

# --- PyInstaller, pinned, outside the build interpreter's environment ---------------------------
pyi=$work/pyinstaller-$PYINSTALLER_VERSION
if [ ! -f "$pyi/.ready" ]; then
  rm -rf "$pyi"
  "$py" -m pip install -q --no-deps --target "$pyi" "pyinstaller==$PYINSTALLER_VERSION" \
    "pyinstaller-hooks-contrib==$HOOKS_CONTRIB_VERSION" "altgraph==$ALTGRAPH_VERSION"
  touch "$pyi/.ready"
fi

# --- build ---------------------------------------------------------------------------------------
t_build=$(date +%s)
PYTHONPATH="$root/$pyi" RADFEAT_VARIANT=$variant RADFEAT_GUI=$gui PYTHONWARNINGS=ignore \
  "$py" -m PyInstaller build/radfeat.spec --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "$work/pyi-$name"
t_done=$(date +%s)

# --- strip symbol tables (about 160 MB, mostly libtorch_cpu) ----------------------------------------
# Only libraries outside the wheels' *.libs folders: those were rewritten by auditwheel/patchelf and
# strip can corrupt such files.  The smoke test checks that the stripped bundle gives identical tables.
if [ "$strip" = 1 ] && command -v strip >/dev/null; then
  before=$(du -sb "dist/$name" | cut -f1)
  find "dist/$name/_internal" -type f \( -name '*.so' -o -name '*.so.*' \) -not -path '*.libs/*' -print0 |
    while IFS= read -r -d '' f; do
      if file -b "$f" 2>/dev/null | grep -q 'not stripped'; then strip --strip-unneeded "$f"; fi
    done
  echo "build_bundle: stripped symbol tables: $(( (before - $(du -sb "dist/$name" | cut -f1)) / 1000000 )) MB saved"
fi

# --- report --------------------------------------------------------------------------------------
exe=dist/$name/radfeat
"$exe" --version >/dev/null  # first start warms the page cache; time the next ones
best=$(for _ in 1 2 3; do
  s=$(date +%s.%N); "$exe" --version >/dev/null; e=$(date +%s.%N); awk -v a="$s" -v b="$e" 'BEGIN { print b - a }'
done | sort -g | head -1)
echo
echo "bundle:          dist/$name/ ($(du -sh "dist/$name" | cut -f1), $(find "dist/$name" -type f | wc -l) files)"
echo "largest parts:   $(du -sm "dist/$name"/_internal/* | sort -rn | head -6 | awk '{ printf "%s %s MB; ", $2, $1 }' | sed "s#dist/$name/_internal/##g")"
echo "--version:       $(awk -v t="$best" 'BEGIN { printf "%.2f s", t }') (best of 3, warm cache)"
echo "build time:      $((t_done - t_build)) s PyInstaller, $((t_done - t_start)) s in all"
if [ "$archive" = 1 ]; then
  version=$("$exe" --version | awk '{ print $2 }')
  tarball=dist/$name-$version-linux-$(uname -m).tar.gz
  tar -C dist -czf "$tarball" "$name"
  echo "archive:         $tarball ($(du -sh "$tarball" | cut -f1))"
fi
if [ "$smoke" = 1 ]; then
  bash build/smoke_test.sh "dist/$name"
fi
