#!/usr/bin/env bash
# test_fuzz_replay.sh - every committed fuzz input (the seeds in
# tests/fuzz/corpus/fuzz_<target>/, each finding's input in
# tests/fuzz/regress/fuzz_<target>/ and the minimized corpus the fuzzing
# campaigns grew, tests/fuzz/grown/fuzz_<target>/: scripts/fuzz.sh --keep) replayed through its target
# (replay_<target>, built beside qrun from tests/fuzz/fuzz_<target>.c and
# tests/fuzz/replay.c): none may crash, abort or trip a check. In the
# Release build each target runs under a 2 GiB address-space limit
# (ulimit -v): a hostile file must be refused with a message, never make
# the parser allocate its way into an out-of-memory abort. (A sanitizer
# build reserves terabytes of shadow memory, so there the limit is off and
# the sanitizers do the checking.)
. "$(dirname "$0")/harness.sh" "$@"
bin=$(dirname "$QRUN")
limit_kb=$((2 * 1024 * 1024))

for dir in tests/fuzz/corpus/fuzz_*; do
    t=${dir##*/fuzz_}
    r=$bin/replay_$t
    if [ ! -x "$r" ]; then fail "replay-$t" "$r not built"; continue; fi
    inputs=("$dir")
    [ -d "tests/fuzz/regress/fuzz_$t" ] && inputs+=("tests/fuzz/regress/fuzz_$t")
    [ -d "tests/fuzz/grown/fuzz_$t" ] && inputs+=("tests/fuzz/grown/fuzz_$t") # the corpus of the hours of fuzzing
    if ldd "$r" 2>/dev/null | grep -q libasan; then
        run "$r" "${inputs[@]}"
        how="(sanitizers, no ulimit)"
    else
        run bash -c 'ulimit -v "$1" && shift && exec "$@"' _ "$limit_kb" "$r" "${inputs[@]}"
        how="(ulimit -v $limit_kb KiB)"
    fi
    if [ "$rc" -eq 0 ]; then
        ok "replay-$t $how: $out"
    else
        last=$(printf '%s\n' "$err" | grep '^replay: ' | tail -n 1)
        fail "replay-$t" "exit $rc $how while running ${last#replay: }; stderr tail: $(printf '%s' "$err" | tail -n 5)"
    fi
done
# a replay that crashes is reported (the check can fail)
printf 'not a gguf' >"$T/x"
run bash -c 'ulimit -c 0; "$1" "$2" /no/such/input' _ "$bin/replay_gguf" "$T/x"
if [ "$rc" -eq 2 ]; then ok replay-2.1; else fail replay-2.1 "a missing input gave exit $rc, want 2"; fi
finish
