#!/usr/bin/env bash
# test_report_committed.sh - the committed report (reports/report.pdf)
# rebuilds from the committed artifacts (reports/study-smollm2-default/) by
# one command, and its text comes out the same: pdftotext of both, lines
# joined, with the one thing that may differ masked (the qrun revision
# that made it; the date is the committed one, given as SOURCE_DATE_EPOCH).
# Needs the report's tools (scripts/setup_report.sh, which report.lua and
# the study's report stage install on first use); without them, or before
# a report is committed, it says so and checks nothing else.
#   usage: bash tests/test_report_committed.sh /path/to/qrun   (from the repo root)
. "$(dirname "$0")/harness.sh" "$@"
pdf=${QR_REPORT_PDF:-reports/report.pdf}     # overridable to check the check
dir=${QR_REPORT_DIR:-reports/study-smollm2-default}
if [ ! -f "$pdf" ]; then
    echo "skip: no $pdf committed yet"
    finish
fi
if ! bash scripts/setup_report.sh --check >/dev/null 2>&1; then
    echo "skip: the report's tools are not installed (scripts/setup_report.sh)"
    finish
fi
# text TXT: the PDF's text, lines joined (a line broken after a hyphen joins without a space), the revision masked
text() {
    pdftotext "$1" - 2>/dev/null | sed -e ':a;N;$!ba;s/-\n */-/g;s/\n/ /g;s/  */ /g' \
        | sed -E 's/qrun revision [0-9a-f]+( with uncommitted changes)?/qrun revision R/g'
}
old=$(text "$pdf")
when=$(printf '%s' "$old" | grep -o -m1 -E '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC' | head -1)
if [ -z "$when" ]; then fail committed-1.1 "$pdf: no 'YYYY-MM-DD HH:MM UTC' date in its text"; finish; fi
epoch=$(date -u -d "$when" +%s)
run env SOURCE_DATE_EPOCH="$epoch" "$QRUN" recipes/report.lua --run-dir="$dir" --out="$T/report.pdf" --no-install
expect_rc committed-1.1 0
new=$(text "$T/report.pdf")
if [ "$old" = "$new" ]; then
    ok "committed-1.2 ($pdf rebuilt from $dir: the same text, ${#new} characters)"
else
    diff <(printf '%s' "$old" | tr '.' '\n') <(printf '%s' "$new" | tr '.' '\n') | head -20
    fail committed-1.2 "$pdf and its rebuild from $dir differ (above, by sentence)"
fi
finish
