#!/usr/bin/python3
"""A real classification task for `moe finetune --task classify`: which file of Debian's `fortunes`
package (/usr/share/games/fortunes/<category>) a fortune comes from.

Takes the fortunes of CATEGORIES (files with at least 600 fortunes each, chosen for distinct subjects),
drops texts that appear in more than one of them, draws PER_CLASS of each (seeded), tokenises each
with the model's tokenizer.json (through libmoe), keeps the first SEQ_LEN ids and left-pads shorter
ones with the pad id (the classification head reads each sequence's last token, so the fortune's own
last token lands there), and writes a .safetensors with int64 `input_ids` [N, SEQ_LEN] and `labels`
[N]. The held-out split is the last HELD_OUT of the rows, balanced like the rest, so
`moe finetune --eval-fraction HELD_OUT` evaluates on exactly those. A JSON beside it records the
classes, their counts in each split and the share of fortunes longer than SEQ_LEN.

Usage: make_fortune_categories.py --tokenizer MODEL/tokenizer.json --build build/trainrun --out FILE.safetensors"""
import argparse
import json
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libmoe  # noqa: E402
import token_data  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
CATEGORIES = ["computers", "definitions", "politics", "science", "songs-poems"]
PER_CLASS = 600
HELD_OUT = 0.2
SEQ_LEN = 64
PAD_ID = 2  # "</s>" of the quickstart tokenizer: never produced by encoding plain text


def read_fortunes(category):
    with open(os.path.join(FORTUNES, category), encoding="utf-8", errors="replace") as f:
        text = f.read()
    out, current = [], []
    for line in text.split("\n"):
        if line.strip() == "%":
            out.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    out.append("\n".join(current).strip())
    return [t for t in out if t]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    texts = {c: read_fortunes(c) for c in CATEGORIES}
    seen = {}
    for c, ts in texts.items():
        for t in set(ts):
            seen[t] = seen.get(t, 0) + 1
    rng = random.Random(a.seed)
    tok = libmoe.Lib(a.build).tokenizer(a.tokenizer)
    train, held, truncated, lengths = [], [], 0, []
    n_held = int(PER_CLASS * HELD_OUT)
    for label, c in enumerate(CATEGORIES):
        unique = sorted({t for t in texts[c] if seen[t] == 1})
        if len(unique) < PER_CLASS:
            raise SystemExit(f"{c}: only {len(unique)} fortunes of its own, fewer than {PER_CLASS}")
        chosen = rng.sample(unique, PER_CLASS)
        rows = []
        for t in chosen:
            ids = tok.encode(t)
            if PAD_ID in ids:
                raise SystemExit(f"the pad id {PAD_ID} occurs in the encoding of a fortune of {c}")
            lengths.append(len(ids))
            truncated += len(ids) > SEQ_LEN
            ids = ids[:SEQ_LEN]
            rows.append(([PAD_ID] * (SEQ_LEN - len(ids)) + ids, label))
        train += rows[n_held:]
        held += rows[:n_held]
    rng.shuffle(train)
    rng.shuffle(held)
    rows = train + held
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    labels = np.asarray([r[1] for r in rows], dtype=np.int64)
    token_data.write(a.out, {"input_ids": ids, "labels": labels})
    info = {"classes": CATEGORIES, "per_class": PER_CLASS, "seq_len": SEQ_LEN, "pad_id": PAD_ID,
            "rows": len(rows), "held_out_fraction": HELD_OUT, "held_out_rows": len(held),
            "train_counts": [sum(r[1] == i for r in train) for i in range(len(CATEGORIES))],
            "held_out_counts": [sum(r[1] == i for r in held) for i in range(len(CATEGORIES))],
            "majority_baseline": max(sum(r[1] == i for r in held) for i in range(len(CATEGORIES))) / len(held),
            "share_truncated": truncated / len(lengths), "median_tokens": int(np.median(lengths))}
    assert token_data.split_off(ids, HELD_OUT)[1].shape[0] == len(held)
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
