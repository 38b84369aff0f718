#!/bin/bash
# SPDX-License-Identifier: MIT
# Keep what bounded fuzzing found: merge BUILD/fuzz-out/T/new into tests/fuzz/corpus/T with
# libFuzzer's -merge=1: hand-written seeds stay, found inputs only while they add coverage.
# Run after `ctest -L libfuzzer` in a libFuzzer build directory.
#
#   tests/fuzz/merge_corpus.sh BUILD_DIR [TARGET...]
set -eu
build=${1:?usage: merge_corpus.sh BUILD_DIR [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
    targets=(netstring tcp_table sts_txt sts_policy dns_rdata config dns_answer)
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$t
    corpus=$here/corpus/$t
    [ -x "$bin" ] || { echo "merge_corpus: no $bin" >&2; exit 1; }
    max_len=$(grep -o "FUZZ_MAX_LEN_$t [0-9]*" "$here/CMakeLists.txt" | awk '{print $2}')
    keep=$(mktemp -d) rest=$(mktemp -d)
    # Hand-written seeds (named) always stay; found inputs (named by their SHA-1) stay only
    # while they add coverage to the named ones and to each other.
    for f in "$corpus"/*; do
        if [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]]; then dest=$rest; else dest=$keep; fi
        cp "$f" "$dest/"
    done
    before=$(find "$corpus" -type f | wc -l)
    found=$build/fuzz-out/$t
    mkdir -p "$found/merge-artifacts"
    "$bin" -merge=1 -max_len="${max_len:-4096}" -artifact_prefix="$found/merge-artifacts/" \
        "$keep" "$rest" "$found/new" \
        >"$build/fuzz-out/$t/merge.log" 2>&1 ||
        { echo "merge_corpus: $t failed, see $build/fuzz-out/$t/merge.log" >&2; exit 1; }
    find "$corpus" -type f -delete
    cp "$keep"/* "$corpus"/
    rm -rf "$keep" "$rest"
    bytes=$(du -sb "$corpus" | cut -f1)
    echo "$t: $before -> $(find "$corpus" -type f | wc -l) files, $((bytes / 1024)) KiB"
done
