#!/usr/bin/env bash
# test_layers.sh - the include rule (scripts/check_layers.sh,
# docs/ARCHITECTURE.md): the tree obeys it, and the check does catch a
# lower layer including a higher one and a plugin including the engine.
. "$(dirname "$0")/harness.sh" "$@"

run bash scripts/check_layers.sh
expect_rc layers-1.1 0
echo "$out"

# a small tree with three violations and one legal include
mkdir -p "$T/tree/core/ops" "$T/tree/core/model" "$T/tree/core/io" "$T/tree/plugins/loss"
printf '/* base */\n' >"$T/tree/core/qr.h"
printf '/* abi */\n' >"$T/tree/core/qr_plugin.h"
printf '#include "qr.h"\n' >"$T/tree/core/model/model.h"
printf '#include "io/gguf.h"\n' >"$T/tree/core/model/m.c"
printf '#include "qr.h"\n#include "model/model.h"\n' >"$T/tree/core/ops/ops.c"
printf '/* io */\n' >"$T/tree/core/io/gguf.h"
printf '#include "qr_plugin.h"\n#include "qr.h"\n' >"$T/tree/plugins/loss/x.c"
run bash scripts/check_layers.sh "$T/tree"
expect_rc layers-2.1 1
expect_in layers-2.2 "$out" "core/ops/ops.c:2: ops includes core/model/model.h, of layer model"
expect_in layers-2.3 "$out" "core/model/m.c:1: model includes core/io/gguf.h, of layer io"
expect_in layers-2.4 "$out" "plugins/loss/x.c:2: a plugin includes core/qr.h"
if printf '%s' "$out" | grep -q "ops.c:1"; then fail layers-2.5 "a legal include was flagged: $out"; else ok layers-2.5; fi

# search sits above train: it may include train, train may not include it,
# and io (a sibling of train) may not either
mkdir -p "$T/tree3/core/train" "$T/tree3/core/search" "$T/tree3/core/io"
printf '/* base */\n' >"$T/tree3/core/qr.h"
printf '#include "qr.h"\n' >"$T/tree3/core/train/trainer.h"
printf '#include "qr.h"\n#include "train/trainer.h"\n' >"$T/tree3/core/search/ilp.c"
printf '#include "qr.h"\n' >"$T/tree3/core/search/ilp.h"
printf '#include "search/ilp.h"\n' >"$T/tree3/core/train/proxy.c"
printf '#include "search/ilp.h"\n' >"$T/tree3/core/io/x.c"
run bash scripts/check_layers.sh "$T/tree3"
expect_rc layers-4.1 1
expect_in layers-4.2 "$out" "core/train/proxy.c:1: train includes core/search/ilp.h, of layer search"
expect_in layers-4.3 "$out" "core/io/x.c:1: io includes core/search/ilp.h, of layer search"
if printf '%s' "$out" | grep -q "search/ilp.c"; then fail layers-4.4 "search including train was flagged: $out"; else ok layers-4.4; fi

# encoder sits above io: it may include io, and io (below it) and train (a
# sibling) may not include it
mkdir -p "$T/tree4/core/io" "$T/tree4/core/encoder" "$T/tree4/core/train"
printf '/* base */\n' >"$T/tree4/core/qr.h"
printf '#include "qr.h"\n' >"$T/tree4/core/io/safetensors.h"
printf '#include "qr.h"\n#include "io/safetensors.h"\n' >"$T/tree4/core/encoder/encoder.c"
printf '#include "qr.h"\n' >"$T/tree4/core/encoder/encoder.h"
printf '#include "encoder/encoder.h"\n' >"$T/tree4/core/io/x.c"
printf '#include "encoder/encoder.h"\n' >"$T/tree4/core/train/y.c"
run bash scripts/check_layers.sh "$T/tree4"
expect_rc layers-5.1 1
expect_in layers-5.2 "$out" "core/io/x.c:1: io includes core/encoder/encoder.h, of layer encoder"
expect_in layers-5.3 "$out" "core/train/y.c:1: train includes core/encoder/encoder.h, of layer encoder"
if printf '%s' "$out" | grep -q "encoder/encoder.c"; then fail layers-5.4 "encoder including io was flagged: $out"; else ok layers-5.4; fi

# a folder of core/ that is not a layer is named
mkdir -p "$T/tree2/core/extra"
printf '/* x */\n' >"$T/tree2/core/extra/x.c"
run bash scripts/check_layers.sh "$T/tree2"
expect_rc layers-3.1 1
expect_in layers-3.2 "$out" "core/extra/x.c: a folder of core/ that is not a layer"
finish
