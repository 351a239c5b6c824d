#!/usr/bin/env bash
# test_report.sh - recipes/report.lua end to end on the SYNTHETIC study run
# directory tests/fixtures/report (hand-made numbers, see its README.md):
# refusals (no --run-dir, a missing directory, a bad --format), a missing
# tool named with the setup script (a PATH without groff, --no-install),
# --format=ms with no tool at all holding the generated sentences, then,
# where groff is installed, the PDF (starts with %PDF, has pages, every
# figure drawn when gnuplot and gs are there) and the plain-text rendering
# holding the section titles in order and the generated sentences.
#
# groff, ghostscript and gnuplot are not part of scripts/setup.sh (only the
# report needs them; scripts/setup_report.sh installs them), so without
# groff the rendering checks are skipped with a note and the test passes
# on what it could check.
#   usage: bash tests/test_report.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"
FIX=tests/fixtures/report

# flat FILE: the text with lines joined (a line broken after a hyphen joins
# without a space), groff's minus escape undone and runs of spaces squeezed
flat() { sed -e ':a;N;$!ba;s/-\n */-/g;s/\n/ /g;s/\\-/-/g;s/  */ /g' "$1"; }
# sentences ID TEXT: the generated sentences every rendering must hold
sentences() {
  local id=$1 text=$2
  expect_in "$id.1" "$text" "cyclic_bits at w4a8 improves F1 over joint training by 50.0 points (95% CI ["
  expect_in "$id.2" "$text" "cyclic_bits at fp shows no measurable effect on F1 relative to joint training (difference 0.0 points, 95% CI [0.0, 0.0] includes zero)."
  expect_in "$id.3" "$text" "greedy-0.3 improves F1 over uniform w8a8 by 2.5 points (95% CI [0.5, 4.5])."
  expect_in "$id.4" "$text" "ilp-0.3 shows no measurable effect on F1 relative to uniform w8a8 (difference +0.3 points, 95% CI [-1.0, 1.6] includes zero)."
  expect_in "$id.5" "$text" "below the fixed fp model's 60.0 [40.0, 80.0] (the 95% intervals do not overlap)."
  expect_in "$id.6" "$text" "sp-cascade and sp-feature were not run in this directory"
  expect_in "$id.7" "$text" "SYNTHETIC"
}

# ---------------------------------------------------------------- refusals
run "$QRUN" recipes/report.lua
expect_rc report-1.1 2
expect_in report-1.2 "$err" "--run-dir: give a study run directory"
run "$QRUN" recipes/report.lua --run-dir="$T/nowhere" --out="$T/r1.pdf"
expect_rc report-1.3 2
expect_in report-1.4 "$err" "--run-dir=$T/nowhere: no such directory"
run "$QRUN" recipes/report.lua --run-dir="$FIX" --format=docx --out="$T/r1.pdf"
expect_rc report-1.5 2
expect_in report-1.6 "$err" "--format=docx: expected pdf, txt or ms"
[ -e "$T/r1.pdf" ] && fail report-1.7 "a refused run wrote $T/r1.pdf" || ok report-1.7

# ---------------------------------------------------------------- a missing tool
# a PATH with everything of /usr/bin and /bin but groff's programs
mkdir -p "$T/bin"
for f in /usr/local/bin/* /usr/bin/* /bin/*; do
  n=${f##*/}
  case $n in groff|gropdf|troff|tbl|eqn) continue ;; esac
  [ -e "$T/bin/$n" ] || ln -s "$f" "$T/bin/$n" 2>/dev/null
done
run env PATH="$T/bin" "$QRUN" recipes/report.lua --run-dir="$FIX" --out="$T/r2.pdf" --no-install
expect_rc report-2.1 2
expect_in report-2.2 "$err" "--format=pdf needs groff"
expect_in report-2.3 "$err" "run scripts/setup_report.sh as root"
expect_in report-2.4 "$err" "apt-get install --no-install-recommends groff"
[ -e "$T/r2.pdf" ] && fail report-2.5 "wrote $T/r2.pdf without groff" || ok report-2.5
run env PATH="$T/bin" bash scripts/setup_report.sh --check
expect_rc report-2.6 1
expect_in report-2.7 "$err" "missing: groff gropdf tbl eqn"

# ---------------------------------------------------------------- the source, with no tool
run env PATH="$T/bin" "$QRUN" recipes/report.lua --run-dir="$FIX" --format=ms --out="$T/ms/report.ms" --no-install
expect_rc report-3.1 0
expect_in report-3.2 "$out" "0 of 9 figures drawn; stages missing: losses (cascade, feature)"
if [ -s "$T/ms/report.ms" ]; then
  ok report-3.3
  sentences report-3.4 "$(flat "$T/ms/report.ms")"
  [ -s "$T/ms/report.d/accuracy.gp" ] && [ -s "$T/ms/report.d/acc-1.dat" ] && ok report-3.5 ||
    fail report-3.5 "the figures' gnuplot scripts and data are not in $T/ms/report.d"
else
  fail report-3.3 "no $T/ms/report.ms"
fi

# ---------------------------------------------------------------- the PDF and its text
if ! command -v groff >/dev/null 2>&1 || ! command -v gropdf >/dev/null 2>&1; then
  echo "skip report-4, report-5: groff not installed (scripts/setup_report.sh installs it)"
  finish
fi
plots=()
if command -v gnuplot >/dev/null 2>&1 && command -v gs >/dev/null 2>&1; then
  want="9 of 9 figures drawn"
else
  echo "note: gnuplot or gs missing: the PDF is checked without figures (--no-plots)"
  plots=(--no-plots)
  want="0 of 9 figures drawn"
fi
run "$QRUN" recipes/report.lua --run-dir="$FIX" --out="$T/pdf/report.pdf" --no-install "${plots[@]}"
expect_rc report-4.1 0
expect_in report-4.2 "$out" "$want"
if [ "$(head -c 5 "$T/pdf/report.pdf" 2>/dev/null)" = "%PDF-" ]; then ok report-4.3; else fail report-4.3 "$T/pdf/report.pdf does not start with %PDF-"; fi
pages=$(printf '%s' "$out" | sed -n 's/.*(\([0-9]*\) pages.*/\1/p')
if [ -n "$pages" ] && [ "$pages" -ge 5 ]; then ok report-4.4; else fail report-4.4 "pages: '$pages' (want >= 5): $out"; fi
if [ ${#plots[@]} -eq 0 ]; then
  n=$(grep -c "^\.QRFIG " "$T/pdf/report.d/report.ms")
  [ "$n" -ge 8 ] && ok report-4.5 || fail report-4.5 "$n figures placed in the source, want 8"
fi
if command -v pdftotext >/dev/null 2>&1; then # optional: poppler-utils
  pdftotext "$T/pdf/report.pdf" "$T/pdf/report.pdftxt" 2>/dev/null
  expect_in report-4.6 "$(flat "$T/pdf/report.pdftxt")" "Random precision inference against fixed precision"
fi

run "$QRUN" recipes/report.lua --run-dir="$FIX" --format=txt --out="$T/txt/report.txt" --no-install
expect_rc report-5.1 0
text=$(flat "$T/txt/report.txt")
sentences report-5.2 "$text"
# the nine numbered sections in order
titles=("1. Task accuracy under every configuration tried" "2. How the best configuration was found"
  "3. Training objectives for switching" "4. Cyclic precision training against joint training"
  "5. Random precision inference against fixed precision" "6. Research directions"
  "7. Comparison with the earlier reports" "8. What differs from the assignment, and how to run it on GPT-2"
  "9. Speed and memory")
prev=0 inorder=1
for t in "${titles[@]}"; do
  p=$(printf '%s' "$text" | grep -bo -F -- "$t" | head -1 | cut -d: -f1)
  if [ -z "$p" ] || [ "$p" -lt "$prev" ]; then inorder=0; echo "  title '$t' at '${p:-missing}'"; else prev=$p; fi
done
[ $inorder = 1 ] && ok report-5.3 || fail report-5.3 "the section titles are not all there in order"
# an empty run directory renders too, saying every stage is missing
mkdir -p "$T/empty"
run "$QRUN" recipes/report.lua --run-dir="$T/empty" --format=txt --no-install
expect_rc report-5.4 0
expect_in report-5.5 "$(flat "$T/empty/report.txt")" "Stage cpt was not run in this directory (cpt/results.json is absent)"
finish
