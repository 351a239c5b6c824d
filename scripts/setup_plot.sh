#!/usr/bin/env bash
# setup_plot.sh - install gnuplot (Debian's gnuplot-nox) for recipes that
# draw curves (recipes/cpt.lua's curves.png), only if it is missing. Not
# part of the main setup: nothing else needs it. Exits 0 when gnuplot is
# there afterwards, 1 (with a message) when it is not and cannot be
# installed here (no root, no apt-get, no package source).
set -u
if command -v gnuplot >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_plot: gnuplot is missing and there is no apt-get to install it" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "setup_plot: gnuplot is missing; install it as root: apt-get install -y gnuplot-nox" >&2
        exit 1
    fi
fi
echo "setup_plot: installing gnuplot-nox (apt-get's output: ${TMPDIR:-/tmp}/setup_plot.log)" >&2
log=${TMPDIR:-/tmp}/setup_plot.log
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q gnuplot-nox >"$log" 2>&1; then
    $SUDO apt-get update -q >>"$log" 2>&1 && $SUDO apt-get install -y -q gnuplot-nox >>"$log" 2>&1
fi
command -v gnuplot >/dev/null 2>&1 || { echo "setup_plot: gnuplot-nox could not be installed" >&2; exit 1; }
