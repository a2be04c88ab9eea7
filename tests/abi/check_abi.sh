#!/usr/bin/env bash
# Compares the built libmoe with the committed ABI baseline (see CMakeLists.txt).
#   check_abi.sh ABIDIFF BASELINE LIBMOE PUBLIC_HEADERS_DIR
set -uo pipefail
abidiff=$1 baseline=$2 library=$3 headers=$4

fail() {
  echo "abi: $*" >&2
  echo "If the change is intended: build the target moe_abi_baseline, commit the new tests/abi/libmoe.abi and" >&2
  echo "record the change in docs/ABI_CHANGES.md (a removal or change of meaning needs a new major version)." >&2
  exit 1
}

if [ -z "$abidiff" ] || [ ! -x "$abidiff" ]; then
  echo "abi: abidiff was not found (Debian package abigail-tools): run scripts/setup" >&2
  exit 1
fi

# The exported symbols, read without libabigail: a damaged baseline that abidiff half-reads (it then
# reports no change) cannot hide a symbol that came or went.
exported=$(nm -D --defined-only "$library" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
recorded=$(sed -n "s/.*<elf-symbol name='\([^']*\)'.*/\1/p" "$baseline" | sort)
if [ "$exported" != "$recorded" ]; then
  fail "libmoe exports other functions than the baseline records:
$(diff <(echo "$recorded") <(echo "$exported") | sed -n 's/^</  only in the baseline:/p; s/^>/  only in libmoe:/p')"
fi

# The types behind them. abidiff's exit status is a bit set: 1 error, 2 usage, 4 ABI change,
# 8 incompatible change; it also prints XML parse errors without failing.
report=$("$abidiff" --headers-dir2 "$headers" --drop-private-types --exported-interfaces-only "$baseline" "$library" 2>&1)
status=$?
if [ $status -ne 0 ] || [ -n "$report" ]; then
  echo "$report" >&2
  fail "libmoe's ABI differs from tests/abi/libmoe.abi (abidiff status $status)."
fi
echo "abi: libmoe matches the baseline ($(echo "$exported" | wc -l) functions)"
