#!/usr/bin/env python3
"""Writes the tokenizer benchmark corpus: about 10 MB of mixed text, one text per line, deterministic.

By bytes, roughly: English prose from the fortunes package 45%, other scripts
(tests/text/corpus/multilingual.txt: Chinese, Japanese, Arabic, ...) 20%, source code of this
repository 20%, digit runs 5%, whitespace runs 3%, random Unicode from long-stable blocks 7%.
Newlines inside texts are written as spaces (a line is a text). usage: make_corpus.py OUT [--mb 10]
"""
import argparse
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STABLE_RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x24F), (0x300, 0x36F), (0x391, 0x3C9), (0x400, 0x4FF),
                 (0x5D0, 0x5EA), (0x620, 0x652), (0x905, 0x939), (0xE01, 0xE3A), (0x2010, 0x2027), (0x2190, 0x22FF),
                 (0x3041, 0x3096), (0x30A1, 0x30FA), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0xFF01, 0xFF5E),
                 (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F)]


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in f]


def sources():
    fortunes = "/usr/share/games/fortunes"
    prose = []
    for name in sorted(os.listdir(fortunes)):
        if "." not in name:
            prose += [l for l in read_lines(os.path.join(fortunes, name)) if l.strip() not in ("", "%")]
    multilingual = read_lines(os.path.join(ROOT, "tests/text/corpus/multilingual.txt"))
    code = []
    for top in ("core", "api", "plugins", "tools", "scripts", "bench"):
        for dirpath, _, files in sorted(os.walk(os.path.join(ROOT, top))):
            for name in sorted(files):
                if name.endswith((".cpp", ".h", ".c", ".py", ".mjs", ".txt")):
                    code += [l for l in read_lines(os.path.join(dirpath, name)) if l.strip()]
    return prose, multilingual, code


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=10.0)
    args = ap.parse_args()
    rng = random.Random(1234)
    prose, multilingual, code = sources()
    target = int(args.mb * 1e6)
    shares = [("prose", 0.45), ("multilingual", 0.20), ("code", 0.20), ("digits", 0.05), ("whitespace", 0.03),
              ("random", 0.07)]

    def text(kind):
        if kind == "prose":
            return " ".join(rng.choice(prose) for _ in range(rng.randint(1, 6)))
        if kind == "multilingual":
            return rng.choice(multilingual) + (" " + rng.choice(multilingual) if rng.random() < 0.5 else "")
        if kind == "code":
            i = rng.randrange(len(code) - 8)
            return "    ".join(code[i:i + rng.randint(1, 8)])
        if kind == "digits":
            return " ".join("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
                            for _ in range(rng.randint(1, 5)))
        if kind == "whitespace":
            return "".join(rng.choice([" ", "  ", "\t", "    ", "\u3000", "x", "y "]) for _ in range(rng.randint(5, 80)))
        out = []
        ranges = [rng.choice(STABLE_RANGES) for _ in range(2)]
        for _ in range(rng.randint(5, 80)):
            lo, hi = rng.choice(ranges)
            out.append(" " if rng.random() < 0.1 else chr(rng.randint(lo, hi)))
        return "".join(out)

    lines, size = [], 0
    while size < target:
        kind = rng.choices([k for k, _ in shares], weights=[w for _, w in shares])[0]
        t = text(kind).replace("\r", " ").replace("\n", " ").replace("\u2028", " ").replace("\u2029", " ")
        t = t.replace("\x85", " ").replace("\x0b", " ").replace("\x0c", " ")
        lines.append(t)
        size += len(t.encode("utf-8")) + 1
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{args.out}: {len(lines)} lines, {size} bytes")


if __name__ == "__main__":
    main()
