#!/usr/bin/env python3
"""Tokenizer throughput, side by side in one run: our text plugin (moe_bench_tokenizer) and a peer on
the same corpus, single thread, best of --repeat runs each. Prints a table and, with --check-ids,
whether both produced the same ids on every line.

  --peer js   @huggingface/tokenizers on node (this machine; scripts/setup installs it)
  --peer hf   Hugging Face tokenizers, the Rust library via its Python package (the GPU machine)

usage: compare.py --bench BUILD/bin/moe_bench_tokenizer --tokenizer tokenizer.json --corpus FILE
                  --peer js|hf [--repeat 3] [--check-ids]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--peer", choices=["js", "hf"], required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check-ids", action="store_true")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp()
    ours_ids, peer_ids = os.path.join(tmp, "ours.txt"), os.path.join(tmp, "peer.txt")
    ours = run_json([args.bench, "--tokenizer", args.tokenizer, "--corpus", args.corpus, "--repeat", str(args.repeat)]
                    + (["--ids-out", ours_ids] if args.check_ids else []))
    if args.peer == "js":
        peer = run_json(["node", os.path.join(HERE, "bench_peer_js.mjs"), args.tokenizer, args.corpus, str(args.repeat)])
    else:
        peer = run_json([sys.executable, os.path.join(HERE, "bench_hf_tokenizers.py"), args.tokenizer, args.corpus,
                         "--repeat", str(args.repeat)] + (["--ids-out", peer_ids] if args.check_ids else []))

    print(f"corpus {args.corpus}: {ours['lines']} lines, {ours['bytes'] / 1e6:.2f} MB; tokenizer {args.tokenizer}")
    print(f"{'implementation':52} {'load s':>7} {'MB/s wall':>10} {'MB/CPU-s':>9} {'ids':>10}")
    for r in (ours, peer):
        print(f"{r['implementation']:52} {r['load_s']:7.2f} {r['encode_lines_mb_s']:10.2f} "
              f"{r['encode_lines_mb_cpu_s']:9.2f} {r['ids']:10d}")
    if "encode_batch_1_thread_mb_s" in peer:
        print(f"{'  (its encode_batch, 1 thread)':52} {'':7} {peer['encode_batch_1_thread_mb_s']:10.2f}")
    print(f"ratio ours / peer: {ours['encode_lines_mb_s'] / peer['encode_lines_mb_s']:.2f}x wall, "
          f"{ours['encode_lines_mb_cpu_s'] / peer['encode_lines_mb_cpu_s']:.2f}x CPU time")
    print(f"ours also: with offsets {ours['encode_lines_offsets_mb_s']:.2f} MB/s, whole file as one text "
          f"{ours['encode_whole_mb_s']:.2f} MB/s, decode {ours['decode_mb_s']:.2f} MB/s")
    if args.check_ids and args.peer == "hf":
        with open(ours_ids) as a, open(peer_ids) as b:
            differ = sum(1 for x, y in zip(a, b) if x != y)
        print(f"ids identical on every line: {'yes' if differ == 0 else f'NO ({differ} lines differ)'}")
    elif args.check_ids:
        print("ids: the JS peer is compared line by line in tests/text (ctest -R PeerParity)")


if __name__ == "__main__":
    main()
