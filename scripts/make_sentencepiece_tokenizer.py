#!/usr/bin/env python3
"""Trains a small SentencePiece-style BPE tokenizer (Llama / Mixtral family) and writes it as Hugging
Face tokenizer.json files, offline, from the `fortunes` Debian package's English prose.

Family traits: spaces are U+2581 ("▁") and one is put in front of the text; the BPE model has
<0x00>..<0xFF> byte tokens, so characters it never saw are encoded as their UTF-8 bytes
(byte_fallback); <unk> <s> </s> are special tokens; the decoder turns "▁" back into spaces, byte
tokens back into bytes, and strips the one leading space.

Two files are written, same vocabulary and merges:
  sp_bpe/tokenizer.json          Metaspace pre-tokenizer (prepend_scheme "first", split false),
                                 merges as [left, right] pairs; plus tokenizer_config.json
                                 (add_bos_token true)
  sp_bpe_nfkc_legacy/tokenizer.json  the older Llama conversion: normalizers
                                 Sequence[NFKC, Prepend "▁", Replace " " -> "▁"], no pre-tokenizer,
                                 merges as "left right" strings

Training is deterministic (ties go to the lexicographically smallest pair), so re-running it gives
the same files. usage: make_sentencepiece_tokenizer.py OUT_DIR [--fortunes DIR] [--vocab-size N]
"""
import argparse
import collections
import heapq
import json
import os
import sys

SPACE = "\u2581"
SPECIALS = ["<unk>", "<s>", "</s>"]


def read_corpus(fortunes_dir):
    names = sorted(n for n in os.listdir(fortunes_dir) if not n.endswith((".dat", ".u8")))
    if not names:
        sys.exit(f"{fortunes_dir}: no fortune files (install the Debian package fortunes)")
    lines = []
    for name in names:
        with open(os.path.join(fortunes_dir, name), encoding="utf-8", errors="replace") as f:
            lines.extend(line.rstrip("\n") for line in f if line.strip() not in ("", "%"))
    return lines


def words_of(line):
    """SentencePiece training units: the text with spaces as "▁" and one in front, cut before each "▁"."""
    text = SPACE + line.replace(" ", SPACE)
    words, start = [], 0
    for i in range(1, len(text)):
        if text[i] == SPACE:
            words.append(text[start:i])
            start = i
    words.append(text[start:])
    return words


def train(lines, vocab_size, min_char_count):
    counts = collections.Counter(w for line in lines for w in words_of(line))
    char_counts = collections.Counter()
    for w, c in counts.items():
        for ch in w:
            char_counts[ch] += c
    alphabet = sorted((ch for ch, c in char_counts.items() if c >= min_char_count), key=lambda ch: (-char_counts[ch], ch))
    vocab = {t: i for i, t in enumerate(SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + alphabet)}

    # Words as symbol lists (characters outside the alphabet are left out: they never merge).
    words = [[ch for ch in w] for w in counts]
    freq = list(counts.values())
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            if a in vocab and b in vocab:
                pair_count[(a, b)] += freq[i]
                where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(vocab) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or -neg < 2:
            continue
        a, b = pair
        merged = a + b
        merges.append(pair)
        vocab.setdefault(merged, len(vocab))
        changed = collections.Counter()
        for i in sorted(where.pop(pair, ())):
            w = words[i]
            for x, y in zip(w, w[1:]):
                if x in vocab and y in vocab:
                    changed[(x, y)] -= freq[i]
            out, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    out.append(merged)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            words[i] = out
            for x, y in zip(out, out[1:]):
                if x in vocab and y in vocab:
                    changed[(x, y)] += freq[i]
                    where[(x, y)].add(i)
        for p, delta in changed.items():
            if delta == 0:
                continue
            pair_count[p] += delta
            if pair_count[p] <= 0:
                del pair_count[p]
            else:
                heapq.heappush(heap, (-pair_count[p], p))
        pair_count.pop(pair, None)
    return vocab, merges


def added_tokens():
    return [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
             "special": True} for i, t in enumerate(SPECIALS)]


def post_processor():
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}


def decoder():
    return {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}


def model(vocab, merges, pairs):
    return {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [list(m) if pairs else f"{m[0]} {m[1]}" for m in merges]}


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--fortunes", default="/usr/share/games/fortunes")
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--min-char-count", type=int, default=3)
    args = ap.parse_args()

    vocab, merges = train(read_corpus(args.fortunes), args.vocab_size, args.min_char_count)
    common = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens()}
    write_json(os.path.join(args.out_dir, "sp_bpe", "tokenizer.json"), {
        **common, "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "first", "split": False},
        "post_processor": post_processor(), "decoder": decoder(), "model": model(vocab, merges, pairs=True)})
    write_json(os.path.join(args.out_dir, "sp_bpe", "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "clean_up_tokenization_spaces": False, "legacy": False,
        "tokenizer_class": "LlamaTokenizerFast"})
    write_json(os.path.join(args.out_dir, "sp_bpe_nfkc_legacy", "tokenizer.json"), {
        **common,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None, "post_processor": post_processor(), "decoder": decoder(),
        "model": model(vocab, merges, pairs=False)})
    print(f"{len(vocab)} tokens, {len(merges)} merges -> {args.out_dir}")


if __name__ == "__main__":
    main()
