"""What the training benchmarks share: where things are, the fortunes corpus and its tokenised form,
running `moe` and the peer under the benchmark lock with their CPU use recorded, metrics.jsonl."""
import fcntl
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
PY = "/usr/bin/python3"  # Debian's python with numpy and torch
TOKENIZER = os.path.join(REPO, "tests", "text", "data", "sp_bpe", "tokenizer.json")
LOCK = "/tmp/moe-bench.lock"
sys.path.insert(0, HERE)
sys.path.insert(0, BENCH)
import libmoe  # noqa: E402
import token_data  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def fortunes_text(work):
    path = os.path.join(work, "fortunes.txt")
    if not os.path.exists(path):
        subprocess.run([os.path.join(REPO, "scripts", "fortunes-corpus"), path], check=True)
    return path


def fortunes_tokens(build, work, seq_len):
    """The corpus tokenised by the quickstart's tokenizer, cut into sequences: input_ids .safetensors."""
    path = os.path.join(work, f"fortunes-{seq_len}.safetensors")
    if not os.path.exists(path):
        tok = libmoe.Lib(build).tokenizer(TOKENIZER)
        with open(fortunes_text(work), encoding="utf-8") as f:
            ids = token_data.tokenise_corpus(tok, f.read(), seq_len)
        token_data.write(path, {"input_ids": ids})
    return path


def initial_checkpoint(build, config, seed, out):
    """moe_model_create(config, seed) saved: the weights both trainers start from."""
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        libmoe.Lib(build).create_and_save_model(config, seed, TOKENIZER, out)
    return out


def timed(cmd, env=None, lock=True):
    """Runs cmd holding LOCK (flock(2), as `flock /tmp/moe-bench.lock` takes it) and returns (stdout,
    stderr, {wall seconds, CPU seconds it used, load averages before and after}), the clock started once
    the lock is held. CPU seconds / wall below the thread count means the machine was contended."""
    log("$", " ".join(cmd))
    with open(LOCK, "a") as f:
        if lock:
            fcntl.flock(f, fcntl.LOCK_EX)
        return _run(cmd, env)


def _run(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}:\n{p.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout, p.stderr, {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                                "load_before": [round(x, 2) for x in load0],
                                "load_after": [round(x, 2) for x in os.getloadavg()]}


def metrics(path):
    """(training step lines, evaluation lines) of a metrics.jsonl."""
    steps, evals = [], []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            (evals if "eval_loss" in d else steps).append(d)
    return steps, evals
