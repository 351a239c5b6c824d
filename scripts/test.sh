#!/usr/bin/env bash
# Run the whole test suite: the C unit tests, the model-vs-reference tests,
# the recipe regression tests and the qrun tests, first in the Release build
# (build/), then once more under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/). Exits non-zero if anything fails. Expects scripts/setup.sh
# to have run. The one thing it installs is what the report's tests render
# with (scripts/setup_report.sh: groff, ghostscript, gnuplot, pdftotext;
# not part of the main setup, which does not need them): where that cannot
# be done (no root, no package source) it says so and those checks skip.
#   QRUN_SKIP_ASAN=1  only the Release run
#   QRUN_NO_REPORT_TOOLS=1  do not install the report's tools
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
status=0

if [ "${QRUN_NO_REPORT_TOOLS:-0}" != 1 ] && ! bash scripts/setup_report.sh --check >/dev/null 2>&1; then
    bash scripts/setup_report.sh || echo "test.sh: the report's tools could not be installed; its rendering checks will skip" >&2
fi

echo "== Release build: ctest" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" >/dev/null
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900) || status=1

if [ "${QRUN_SKIP_ASAN:-0}" != 1 ]; then
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer build: ctest" >&2
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQR_SANITIZE=ON >/dev/null
    cmake --build build-asan -j "$jobs" >/dev/null
    # OpenMP's and OpenBLAS's thread pools are left alive at exit by design
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    (cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 1500) || status=1
fi
if [ $status -ne 0 ]; then
    echo "test.sh: FAILED" >&2
else
    echo "test.sh: all passed" >&2
fi
exit $status
