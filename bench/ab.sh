#!/usr/bin/env bash
# Compares the benchmark suite of two commits in one run: builds ./bench at
# each (in temporary git worktrees), then runs them COUNT rounds, the two
# binaries one after the other in each round (their order alternating), and
# prints a benchstat table of old against new.
#
#   bench/ab.sh OLD NEW [COUNT] [BENCH_REGEXP]
#   e.g. bench/ab.sh 53b3a8f HEAD 6 'Benchmark(Narrow|Wide|Skewed)$/batch-default$'
#
# Each binary starts its own private MariaDB per round (as bench/run.sh
# does), so the two never share a server's state. The raw output goes to
# bench/out/ab-old.txt and bench/out/ab-new.txt (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
old=${1:?usage: bench/ab.sh OLD NEW [COUNT] [BENCH_REGEXP]}
new=${2:?usage: bench/ab.sh OLD NEW [COUNT] [BENCH_REGEXP]}
count=${3:-6}
pattern=${4:-'Benchmark(Narrow|Wide|Skewed)$/batch-default$'}
mkdir -p bench/out
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" 2>/dev/null; git worktree remove --force "$tmp/new" 2>/dev/null; rm -rf "$tmp"' EXIT

for side in old new; do
	rev=${!side}
	git worktree add --detach "$tmp/$side" "$rev" >/dev/null
	(cd "$tmp/$side" && go test -c -o "$tmp/$side.test" ./bench)
done
: >bench/out/ab-old.txt
: >bench/out/ab-new.txt
for ((round = 1; round <= count; round++)); do
	order=(old new)
	if ((round % 2 == 0)); then
		order=(new old)
	fi
	for side in "${order[@]}"; do
		printf '# round %d/%d %s (%s) load %s\n' "$round" "$count" "$side" "${!side}" "$(cut -d' ' -f1 /proc/loadavg)"
		(cd "$tmp/$side/bench" && "$tmp/$side.test" -test.run '^$' -test.bench "$pattern" -test.benchtime 1x -test.count 1 -test.timeout 60m) \
			>>"bench/out/ab-$side.txt" 2>&1 || echo "# FAILED: $side round $round"
	done
done
go tool benchstat old=bench/out/ab-old.txt new=bench/out/ab-new.txt
