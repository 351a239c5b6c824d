#!/usr/bin/env bash
# check_layers.sh [ROOT] - the include rule of docs/ARCHITECTURE.md: a file
# of core/ includes only headers of its own layer or of the layers it sits
# on, and a plugin only the ABI header. Prints every violation as
#   core/ops/ops.c:12: ops includes model/model.h (ops may include: base ops)
# and exits 1 if there is one, 0 if none (2 on a usage error).
#
# The layers, lowest first, and what each may include:
#   base   core/*.{c,h}   base
#   ops    core/ops/      base ops
#   text   core/text/     base text
#   model  core/model/    base ops text model
#   io     core/io/       base ops text model io
#   train  core/train/    base ops text model train
#   search core/search/   base ops text model train search
#   encoder core/encoder/ base ops text model io encoder
#   lua    core/lua/      everything
#   plugin plugins/*/     qr_plugin.h only
# A quoted include is resolved against the including file's folder first,
# then core/; system includes (<...>) are not checked.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
[ -d "$root/core" ] || { echo "check_layers: no core/ under $root" >&2; exit 2; }
cd "$root" || exit 2

layer_of() { # path relative to root -> layer name, or "" outside the checked tree
    case $1 in
        core/ops/*) echo ops ;;
        core/text/*) echo text ;;
        core/model/*) echo model ;;
        core/io/*) echo io ;;
        core/train/*) echo train ;;
        core/search/*) echo search ;;
        core/encoder/*) echo encoder ;;
        core/lua/*) echo lua ;;
        core/*/*) echo unknown ;;
        core/*) echo base ;;
        plugins/*) echo plugin ;;
        *) echo "" ;;
    esac
}
allowed() { # layer -> the layers it may include
    case $1 in
        base) echo "base" ;;
        ops) echo "base ops" ;;
        text) echo "base text" ;;
        model) echo "base ops text model" ;;
        io) echo "base ops text model io" ;;
        train) echo "base ops text model train" ;;
        search) echo "base ops text model train search" ;;
        encoder) echo "base ops text model io encoder" ;;
        lua) echo "base ops text model io train search encoder lua" ;;
        *) echo "" ;;
    esac
}

bad=0 n=0
while IFS= read -r f; do
    from=$(layer_of "$f")
    if [ "$from" = unknown ]; then
        echo "$f: a folder of core/ that is not a layer (add it to scripts/check_layers.sh and docs/ARCHITECTURE.md)"
        bad=1
        continue
    fi
    dir=$(dirname "$f")
    while IFS=: read -r line inc; do
        n=$((n + 1))
        if [ -f "$dir/$inc" ]; then
            target=$(realpath -m --relative-to=. "$dir/$inc")
        elif [ -f "core/$inc" ]; then
            target=$(realpath -m --relative-to=. "core/$inc")
        else
            echo "$f:$line: includes \"$inc\", found neither beside it nor under core/"
            bad=1
            continue
        fi
        if [ "$from" = plugin ]; then
            # core/qr_plugin.h, or a header beside the plugin in its own
            # plugins/<kind>/ folder (helpers plugins of one kind share)
            if [ "$target" != core/qr_plugin.h ] && [ "$(dirname "$target")" != "$dir" ]; then
                echo "$f:$line: a plugin includes $target (a plugin sees only core/qr_plugin.h and headers in its own plugins/<kind>/ folder)"
                bad=1
            fi
            continue
        fi
        to=$(layer_of "$target")
        case " $(allowed "$from") " in
            *" $to "*) ;;
            *)
                echo "$f:$line: $from includes $target, of layer $to ($from may include: $(allowed "$from"))"
                bad=1
                ;;
        esac
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
             sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done < <(find core plugins -name '*.[ch]' 2>/dev/null | sort)

if [ $bad -ne 0 ]; then
    echo "check_layers: FAILED (the layers and their rule: docs/ARCHITECTURE.md)"
    exit 1
fi
echo "check_layers: $n includes checked, every one goes down or sideways within its layer"
exit 0
