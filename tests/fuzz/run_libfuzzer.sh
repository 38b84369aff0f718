#!/bin/bash
# SPDX-License-Identifier: MIT
# One bounded libFuzzer run for ctest: the corpus in the repository is read, never written;
# new inputs go to OUT/new, crashes to OUT/artifacts. Exit 1 (with the reproducer's path)
# on a crash, leak, timeout or oracle violation.
#
#   run_libfuzzer.sh FUZZ_BINARY CORPUS_DIR OUT_DIR SECONDS MAX_LEN
#
# To keep what a run found: tests/fuzz/merge_corpus.sh (minimizes into the corpus).
set -u
bin=${1:?usage: run_libfuzzer.sh FUZZ_BINARY CORPUS_DIR OUT_DIR SECONDS MAX_LEN}
corpus=${2:?} out=${3:?} seconds=${4:?} max_len=${5:?}
name=$(basename "$bin")
mkdir -p "$out/new" "$out/artifacts"
rm -f "$out/artifacts/"*
# clang-19's sanitizers look for llvm-symbolizer beside themselves; Debian has it on PATH.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=$(readlink -f "$(command -v llvm-symbolizer)")
fi
# The first directory receives new inputs; the repository's corpus is only read.
SECONDS=0
"$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/" "$out/new" "$corpus" \
    >"$out/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log")
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log")
cov=$(grep -o 'cov: [0-9]*' "$out/log" | tail -n 1)
seeds=$(find "$corpus" -type f | wc -l)
found=$(find "$out/new" -type f | wc -l)
echo "$name: ${execs:-?} inputs in ${SECONDS} s (${speed:-?}/s), ${cov:-cov: ?}, $seeds seeds," \
     "$found new inputs in $out/new"
if [ "$rc" -ne 0 ]; then
    echo "----- $name failed (exit $rc); last lines of $out/log:"
    grep -v '^#[0-9]' "$out/log" | tail -n 40
    for f in "$out/artifacts/"*; do
        [ -e "$f" ] || continue
        echo "REPRODUCER: $f"
        echo "  replay: $bin $f"
        echo "  or, with the sanitizer build: build-test/tests/fuzz/replay_${name#fuzz_} $f"
    done
    exit 1
fi
exit 0
