#!/usr/bin/env bash
# Build fastloss with AddressSanitizer + UndefinedBehaviorSanitizer in a copy of
# the repository under /tmp, install it into a fresh virtual environment and
# run the bad-input matrix and the property tests under the sanitizers.
# Exits non-zero on any sanitizer report or test failure; prints the time taken.
#
#   tools/sanitize.sh [pytest args...]     (default: the reliability tests)
#
# PYTHON selects the interpreter whose packages (numpy, Cython, pytest,
# hypothesis) the fresh venv reuses (default /work/venv/bin/python, else python3).
set -euo pipefail
start=$(date +%s)
repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/work/venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
work=$(mktemp -d /tmp/fastloss-sanitize.XXXXXX)
log="$work/sanitize.log"
echo "sanitizer build in $work"

# 1. a clean copy of the sources (no build outputs, no compiled modules)
(cd "$repo" && tar --exclude=./build --exclude='*.so' --exclude='./src/*.c' \
    --exclude=.git --exclude='__pycache__' -cf - .) | (cd "$work" && mkdir src-copy && cd src-copy && tar -xf -)

# 2. a fresh venv that sees the test/build dependencies of $PYTHON read-only
base=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')/bin/python3
"$base" -m venv --without-pip "$work/venv"   # pip/setuptools come from the host packages
site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
vsite=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$site" > "$vsite/_host_packages.pth"

# 3. the sanitizer build (baseline target only: the instrumented code is the same)
(cd "$work/src-copy" && FASTLOSS_SANITIZE=1 FASTLOSS_TARGETS=baseline \
    "$work/venv/bin/python" -m pip install --no-build-isolation --no-deps -q . ) >"$log" 2>&1 \
    || { tail -40 "$log"; echo "sanitizer build FAILED"; exit 2; }
build_done=$(date +%s)
echo "build: $((build_done - start)) s"

# 4. the tests, importing the installed (instrumented) fastloss, not the sources
libasan=$(gcc -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "libasan not found ($libasan)"; exit 2; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_reliability_badinput.py test_reliability_properties.py
                                 test_reliability_registry.py test_fastcall.py
                                 test_fastcall_rows.py test_fastcall_seg.py)
set +e
(cd "$work/src-copy/tests" && \
    LD_PRELOAD="$libasan" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$work/venv/bin/python" -m pytest "${tests[@]}" -q -p no:cacheprovider \
        -c ../pyproject.toml --rootdir .. ) >>"$log" 2>&1
rc=$?
set -e
end=$(date +%s)
tail -15 "$log"
if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log"; then
    echo "SANITIZER REPORT (see $log)"; rc=3
fi
python_file=$(cd "$work/src-copy/tests" && LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0 \
    "$work/venv/bin/python" -c 'import fastloss, fastloss._dispatch as d; print(fastloss.__file__, d.TARGET)' \
    2>/dev/null || true)
echo "tested fastloss: $python_file"
echo "sanitizer run: build $((build_done - start)) s, tests $((end - build_done)) s, total $((end - start)) s, exit $rc"
exit $rc
