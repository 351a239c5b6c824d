#!/usr/bin/env bash
# setup_report.sh - install the tools recipes/report.lua typesets the PDF
# report with, only those that are missing (Debian/Ubuntu packages):
#   groff        groff (troff, tbl, eqn, the ms macros and gropdf, groff's PDF driver)
#   perl         perl (gropdf is a Perl program; groff only recommends it)
#   ghostscript  gs (rewrites gnuplot's PDF figures as PDF 1.4, which gropdf can embed)
#   gnuplot-nox  gnuplot (the figures; its pdfcairo terminal)
#   poppler-utils pdftotext (not for making the report: the suite reads the
#                PDF's text back to check it, and the committed report is
#                checked to rebuild to the same text)
# Not part of the main setup (scripts/setup.sh): nothing but the report
# needs them, and the suite's report test skips its rendering checks
# without them. report.lua runs this script itself the first time a tool is
# missing (unless --no-install). Exits 0 when every tool is there
# afterwards, 1 with a message naming what is still missing (no root, no
# apt-get, no package source).
#   usage: bash scripts/setup_report.sh [--check]   (--check: report only, install nothing)
set -u
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

# tool -> package
missing_pkgs=()
missing_tools=()
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        missing_tools+=("$1")
        case " ${missing_pkgs[*]-} " in *" $2 "*) ;; *) missing_pkgs+=("$2") ;; esac
    fi
}
probe() {
    missing_pkgs=()
    missing_tools=()
    need groff groff
    need gropdf groff
    need tbl groff-base
    need eqn groff-base
    need perl perl
    need gs ghostscript
    need gnuplot gnuplot-nox
    need pdftotext poppler-utils
}
probe
if [ ${#missing_tools[@]} -eq 0 ]; then
    [ $check_only = 1 ] && echo "setup_report: groff, gropdf, tbl, eqn, perl, gs, gnuplot and pdftotext are installed"
    exit 0
fi
if [ $check_only = 1 ]; then
    echo "setup_report: missing: ${missing_tools[*]} (Debian packages: ${missing_pkgs[*]})" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_report: missing ${missing_tools[*]}, and there is no apt-get to install them" \
        "(packages: ${missing_pkgs[*]})" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "setup_report: missing ${missing_tools[*]}; install them as root:" \
            "apt-get update && apt-get install -y --no-install-recommends ${missing_pkgs[*]}" >&2
        exit 1
    fi
fi
log=${TMPDIR:-/tmp}/setup_report.log
echo "setup_report: installing ${missing_pkgs[*]} (apt-get's output: $log)" >&2
export DEBIAN_FRONTEND=noninteractive
{ $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}"; } >"$log" 2>&1
probe
if [ ${#missing_tools[@]} -gt 0 ]; then
    echo "setup_report: still missing ${missing_tools[*]} after apt-get (see $log)" >&2
    exit 1
fi
echo "setup_report: done" >&2
