#!/usr/bin/env python3
"""Writes the C++ tables the text plugin's NFC/NFD/NFKC/NFKD normalisation uses.

Input: the Unicode Character Database shipped by Debian's `unicode-data` package
(/usr/share/unicode: UnicodeData.txt, DerivedNormalizationProps.txt, ReadMe.txt for the version).
Output: one header of constant tables (generated into the build tree, never committed):
  - per code point: canonical combining class and the four quick-check answers (two-stage table);
  - full (recursively applied) canonical and compatibility decompositions, Hangul excluded
    (it is decomposed algorithmically);
  - primary composites: (first, second) -> composite for every canonical pair that is not
    Full_Composition_Exclusion.
"""
import argparse
import os
import re
import sys

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
BLOCK = 128


def parse_unicode_data(path):
    ccc, decomp = {}, {}
    with open(path, encoding="ascii") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp = int(fields[0], 16)
            if int(fields[3]):
                ccc[cp] = int(fields[3])
            if fields[5]:
                parts = fields[5].split()
                compat = parts[0].startswith("<")
                if compat:
                    parts = parts[1:]
                decomp[cp] = (compat, [int(p, 16) for p in parts])
    return ccc, decomp


def parse_derived(path):
    """Full_Composition_Exclusion code points and the quick-check answers that are not Yes."""
    exclusions, not_yes = set(), {"NFD_QC": set(), "NFC_QC": set(), "NFKD_QC": set(), "NFKC_QC": set()}
    pattern = re.compile(r"^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*([A-Za-z_]+)(?:\s*;\s*([A-Za-z]+))?")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = pattern.match(line)
            if not m:
                continue
            first = int(m.group(1), 16)
            last = int(m.group(2), 16) if m.group(2) else first
            prop, value = m.group(3), m.group(4)
            cps = range(first, last + 1)
            if prop == "Full_Composition_Exclusion":
                exclusions.update(cps)
            elif prop in not_yes and value in ("N", "M"):
                not_yes[prop].update(cps)
    return exclusions, not_yes


def unicode_version(readme):
    with open(readme, encoding="utf-8") as f:
        m = re.search(r"Version (\d+\.\d+\.\d+)", f.read())
    if not m:
        sys.exit(f"{readme}: no 'Version X.Y.Z' line")
    return m.group(1)


def full_decomposition(cp, decomp, compat_allowed, memo):
    key = (cp, compat_allowed)
    if key in memo:
        return memo[key]
    entry = decomp.get(cp)
    if entry is None or (entry[0] and not compat_allowed):
        result = [cp]
    else:
        result = []
        for part in entry[1]:
            result.extend(full_decomposition(part, decomp, compat_allowed, memo))
    memo[key] = result
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unicode-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    d = args.unicode_dir
    for name in ("UnicodeData.txt", "DerivedNormalizationProps.txt", "ReadMe.txt"):
        if not os.path.isfile(os.path.join(d, name)):
            sys.exit(f"{os.path.join(d, name)} is missing: install the Debian package unicode-data (scripts/setup)")
    ccc, decomp = parse_unicode_data(os.path.join(d, "UnicodeData.txt"))
    exclusions, not_yes = parse_derived(os.path.join(d, "DerivedNormalizationProps.txt"))
    version = unicode_version(os.path.join(d, "ReadMe.txt"))

    compositions = []
    for cp, (compat, parts) in decomp.items():
        if compat or len(parts) != 2 or cp in exclusions:
            continue
        compositions.append(((parts[0] << 21) | parts[1], cp))
    compositions.sort()
    second_elements = {key & 0x1FFFFF for key, _ in compositions}

    # Per code point: bits 0-7 ccc; bit 8 NFD_QC=No; bit 9 NFC_QC in {No, Maybe}; bit 10 NFKD_QC=No;
    # bit 11 NFKC_QC in {No, Maybe}; bit 12 second element of a primary composite.
    def props(cp):
        value = ccc.get(cp, 0)
        if cp in second_elements:
            value |= 1 << 12
        for bit, prop in ((8, "NFD_QC"), (9, "NFC_QC"), (10, "NFKD_QC"), (11, "NFKC_QC")):
            if cp in not_yes[prop]:
                value |= 1 << bit
        return value

    blocks, block_ids, index = [], {}, []
    for start in range(0, 0x110000, BLOCK):
        block = tuple(props(cp) for cp in range(start, start + BLOCK))
        if block not in block_ids:
            block_ids[block] = len(blocks)
            blocks.append(block)
        index.append(block_ids[block])

    memo = {}
    data, entries = [], []
    for cp in sorted(decomp):
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            continue
        canon = full_decomposition(cp, decomp, False, memo)
        compat = full_decomposition(cp, decomp, True, memo)
        canon_off, canon_len = len(data), (len(canon) if canon != [cp] else 0)
        data.extend(canon if canon_len else [])
        compat_off = len(data)
        data.extend(compat)
        entries.append((cp, canon_off, canon_len, compat_off, len(compat)))

    out = []
    w = out.append
    w(f"// Generated by make_normalization_tables.py from the Unicode {version} Character Database: do not edit.\n")
    w("#pragma once\n#include <cstdint>\n\nnamespace moe::text::unicode_tables {\n\n")
    w(f'inline constexpr char kUnicodeVersion[] = "{version}";\n')
    w(f"inline constexpr uint32_t kBlockShift = {BLOCK.bit_length() - 1};\n")
    w("// props(cp) = kPropBlocks[kPropIndex[cp >> kBlockShift]][cp & (block size - 1)]: bits 0-7 canonical\n")
    w("// combining class; 8 NFD_QC=No; 9 NFC_QC=No/Maybe; 10 NFKD_QC=No; 11 NFKC_QC=No/Maybe; 12 the second\n")
    w("// element of a primary composite (Hangul jamo excluded: they compose algorithmically).\n")
    w(f"inline constexpr uint16_t kPropIndex[{len(index)}] = {{")
    w(",".join(str(i) for i in index))
    w("};\n")
    w(f"inline constexpr uint16_t kPropBlocks[{len(blocks)}][{BLOCK}] = {{\n")
    for block in blocks:
        w("{" + ",".join(str(v) for v in block) + "},\n")
    w("};\n\n")
    w("// Full decompositions (Hangul syllables excluded), sorted by code point. canon_length 0: the code\n")
    w("// point has only a compatibility mapping. Offsets index kDecompositionData.\n")
    w("struct Decomposition { uint32_t cp; uint32_t canon_offset; uint32_t canon_length; uint32_t compat_offset; uint32_t compat_length; };\n")
    w(f"inline constexpr Decomposition kDecompositions[{len(entries)}] = {{\n")
    for e in entries:
        w("{%d,%d,%d,%d,%d},\n" % e)
    w("};\n")
    w(f"inline constexpr uint32_t kDecompositionData[{len(data)}] = {{")
    w(",".join(str(v) for v in data))
    w("};\n\n")
    w("// Primary composites: key = first << 21 | second, sorted by key.\n")
    w("struct Composition { uint64_t key; uint32_t composite; };\n")
    w(f"inline constexpr Composition kCompositions[{len(compositions)}] = {{\n")
    for key, cp in compositions:
        w("{%dull,%d},\n" % (key, cp))
    w("};\n\n}  // namespace moe::text::unicode_tables\n")

    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("".join(out))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
