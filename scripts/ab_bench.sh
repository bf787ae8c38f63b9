#!/bin/bash
# Compare `thrml` binaries on a noisy machine: run `thrml bench` for each binary in turn,
# ROUNDS times, and print each binary's flips/ns (the median of 3 repeats per run) per
# round, with the largest.
#
#   scripts/ab_bench.sh CHAINS THREADS ROUNDS OLD_BINARY NEW_BINARY [...]
#
# Environment: WL (workload, default pegasus14), DATA (data dir, default ../shared/data).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 CHAINS THREADS ROUNDS BINARY [BINARY ...]" >&2
  exit 2
fi
chains=$1; threads=$2; rounds=$3; shift 3
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    v=$("$b" bench -q --data-dir "${DATA:-../shared/data}" --workload "${WL:-pegasus14}" \
      --chains "$chains" --threads "$threads" --repeats 3 | tail -1 | awk '{print $8}')
    echo "$b $v"
  done
done | awk '{a[$1] = a[$1] " " $2; if (!($1 in m) || $2 > m[$1]) m[$1] = $2}
  END {for (k in a) print k, "max", m[k], "all", a[k]}'
