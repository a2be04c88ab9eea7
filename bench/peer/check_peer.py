#!/usr/bin/python3
"""Checks that the PyTorch peer computes what transformers 5.17 computes, on the fixtures transformers
made (tests/reference/mixtral*: reference.safetensors holds packed input_ids, seq_lengths, the logits
of the float64 model and its 32 greedy tokens after gen_prompt).

For each fixture: the f32 peer's logits, each sequence run alone, must match the float64 reference to
1e-4 relative (max|diff| / max|ref|); the float64 peer must match it to 1e-6 and reproduce the greedy
tokens exactly; the bf16 peer's error is printed, for information. Exits non-zero on a mismatch.
Usage: /usr/bin/python3 bench/peer/check_peer.py [FIXTURE_DIR ...]"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mixtral_torch  # noqa: E402
from mixtral_torch import safetensors_numpy  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = [os.path.join(REPO, "tests", "reference", n) for n in ("mixtral", "mixtral_other_layout", "mixtral_sharded")]
# The design's parity bar for f32 logits, and a bar for float64 that only a faithful port meets (the
# reference is float64 rounded to f32 and computes RoPE's cos/sin in f32, like the peer).
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-6}


def logits_of(model, ids, seq_lengths):
    out, start = [], 0
    for n in seq_lengths:
        logits, _ = model(ids[start:start + n][None])
        out.append(logits[0].double())
        start += n
    return torch.cat(out)


def check(fixture):
    ref = {k: mixtral_torch._to_torch(dt, a) for k, (dt, a) in
           safetensors_numpy.read(os.path.join(fixture, "reference.safetensors")).items()}
    ids, seq_lengths = ref["input_ids"], ref["seq_lengths"].tolist()
    want = ref["logits"].double()
    ok = True
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        model = mixtral_torch.load_model(fixture, dtype)
        with torch.inference_mode():
            got = logits_of(model, ids, seq_lengths)
            err = ((got - want).abs().max() / want.abs().max()).item()
            line = f"{os.path.basename(fixture)}: {str(dtype)[6:]:8s} logits rel err {err:.2e}"
            if dtype in TOLERANCE:
                passed = err <= TOLERANCE[dtype]
                line += f" (limit {TOLERANCE[dtype]:.0e}) {'ok' if passed else 'FAIL'}"
                ok &= passed
            if dtype == torch.float64:
                gen = mixtral_torch.generate_greedy(model, ref["gen_prompt"][None], len(ref["gen_tokens"]))[0]
                same = torch.equal(gen, ref["gen_tokens"])
                line += f"; greedy tokens {'match' if same else 'DIFFER'}"
                ok &= same
        print(line)
    return ok


def main():
    torch.set_num_threads(2)
    fixtures = sys.argv[1:] or FIXTURES
    results = [check(f) for f in fixtures]
    print("check_peer:", "ok" if all(results) else "FAILED")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
