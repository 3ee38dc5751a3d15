#!/bin/bash
# `lossd warm` on empty Numba caches of two checkouts started at the same time (same load):
# wall and CPU seconds of each (the warm-up's workers included).
#   bench/warm_pair.sh TREE_A CACHE_A TREE_B CACHE_B      (PY: the interpreter, default .venv)
# CACHE_A and CACHE_B are emptied first.
PY=${PY:-/work/main/.venv/bin/python}
run() {
  rm -rf "$2"
  /usr/bin/time -f "$1 wall=%e s user=%U s sys=%S s" env PYTHONPATH="$1/service:$1/client:$1" \
    NUMBA_CACHE_DIR="$2" "$PY" -m lossd.cli warm 2>&1 | tail -n 2
}
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at $(date +%T)"
a=$(mktemp); b=$(mktemp)
run "$1" "$2" > "$a" &
run "$3" "$4" > "$b" &
wait
cat "$a" "$b"; rm -f "$a" "$b"
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at $(date +%T)"
