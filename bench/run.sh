#!/usr/bin/env bash
# Runs the benchmark suite COUNT times and prints a benchstat table, then the
# ratios to LOAD DATA and the targets (bench/cmd/benchreport).
#
#   bench/run.sh [COUNT] [BENCH_REGEXP]     COUNT defaults to 6; e.g. bench/run.sh 1 Wide
#
# Every benchmark iteration is one full load (-benchtime 1x). The suite is
# compiled once and run COUNT times with -test.count=1, one round after the
# other: the same samples as go test -count COUNT, but interleaved, so that a
# burst of load from another process on this 2-core machine spoils one
# sample of a few contenders rather than every sample of one. Each round
# starts its own private MariaDB, and starts each workload's list of
# contenders one further along (BENCH_ROUND), so none is always first.
# The raw output goes to bench/out/latest.txt (git-ignored); the load
# average is printed before and after each round. With the default regexp,
# the root package's pure BenchmarkSplit (sizer + splitter, no server) runs
# COUNT times too.
#
# A full run at COUNT=6 takes about 17 minutes on a quiet machine. The
# equivalent one-liner (not interleaved):
#   go test ./bench -run '^$' -bench . -benchtime 1x -count 6 -timeout 90m | tee bench/out/latest.txt
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=${1:-6}
pattern=${2:-.}
out=bench/out/latest.txt
bin=bench/out/bench.test
mkdir -p bench/out

loadavg() { printf '# %s %s, %s cores, load average %s\n' "$1" "$(date -u +%H:%M:%S)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

go test -c -o "$bin" ./bench
{
	for ((round = 1; round <= count; round++)); do
		loadavg "round $round/$count start"
		# The package's directory is where go test would run it.
		(cd bench && BENCH_ROUND=$((round - 1)) "../$bin" -test.run '^$' -test.bench "$pattern" -test.benchtime 1x -test.count 1 -test.timeout 90m) ||
			echo "# FAILED: round $round exited $?"
		loadavg "round $round/$count end"
	done
	if [[ $pattern == . ]]; then
		go test . -run '^$' -bench '^BenchmarkSplit$' -count "$count" ||
			echo "# FAILED: go test . -bench BenchmarkSplit exited $?"
	fi
} 2>&1 | tee "$out"

echo
go tool benchstat "$out"
echo
go run ./bench/cmd/benchreport "$out"
if grep -q '^# FAILED' "$out"; then
	exit 1
fi
