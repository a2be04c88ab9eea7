#!/usr/bin/python3
"""The CPU benchmark of issue 2: our engine and the PyTorch peer side by side, in one run, on the same
random-weight Mixtral checkpoint (bench/configs/small-mixtral.json, about 250M parameters), in f32 and
bf16: prefill tokens/s (8 x 256 ids, last-position logits) and decode tokens/s (greedy, 16-id prompt,
128 new tokens). See bench/cpu_generate_bench.cpp and bench/peer/time_peer.py for what is timed.

Steps: make (or reuse) the cached checkpoint; check the peer's GEMMs under its environment against
float64 (peer/blas_probe.py; with --peer-env auto every candidate environment is checked, the correct
ones are timed briefly and the fastest per dtype wins); measure the machine's GEMM, copy and read
ceilings (machine_peaks.py, before and after the runs, the higher of each); then REPS rounds of ours
and the peer in each dtype, alternating which goes first, each a fresh process with warm-up and RUNS
timed runs, started when the machine is idle (waiting up to --idle-wait seconds for it). Results
pool every timed run (median).
Prints the table last and writes everything to a JSON file.

Usage: /usr/bin/python3 bench/run_cpu_bench.py [--reps 3] [--runs 3] [--peer-env NAME|auto]
       [--build-dir build/bench] [--json build/bench/cpu_bench.json]
Our side is build-dir/bin/moe_bench_generate (cmake --build build/bench --target moe_bench_generate);
without it only the peer runs, and the run says so."""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import make_random_checkpoint  # noqa: E402

PY = "/usr/bin/python3"  # Debian's python with numpy and torch (the first python3 on PATH may lack them)
DTYPES = ("f32", "bf16")
BATCH, SEQ, PROMPT, NEW = 8, 256, 16, 128  # the work of issue 2: prefill 8 x 256, decode 128 after 16
BYTES = {"f32": 4, "bf16": 2}
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Environments the peer may run under: (variables to set, variables to remove). The machine sets
# OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE because older OpenBLAS builds misdetect its Zen 5;
# without them OpenBLAS 0.3.21 picks its AVX-512 kernel itself. torch 1.13 runs its own kernels
# (softmax, elementwise, index_add) at AVX2 unless ATEN_CPU_CAPABILITY asks for AVX-512. glibc's
# malloc returns large freed blocks to the kernel, so every forward pays page faults for its
# activations again; the tunables keep them in the heap.
MALLOC_KEEP = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
PEER_ENVS = {
    "machine": ({}, ()),
    "openblas-auto": ({}, OPENBLAS_VARS),
    "openblas-auto+avx512": ({"ATEN_CPU_CAPABILITY": "avx512"}, OPENBLAS_VARS),
    "openblas-auto+avx512+malloc": ({"ATEN_CPU_CAPABILITY": "avx512", "GLIBC_TUNABLES": MALLOC_KEEP}, OPENBLAS_VARS),
}
# The fastest correct one when `--peer-env auto` compared them on the benchmark machine (the numbers
# are in docs/PERFORMANCE.md); auto repeats that comparison, at a few minutes' cost.
PEER_ENV_DEFAULT = "openblas-auto+avx512+malloc"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def environment(name):
    sets, unsets = PEER_ENVS[name]
    env = {k: v for k, v in os.environ.items() if k not in unsets}
    env.update(sets)
    return env


def cpu_busy(seconds):
    """Fraction of the machine's CPU time that was not idle over the next `seconds`."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_until_idle(max_wait_s, threshold=0.1, window_s=3.0):
    """Waits (up to max_wait_s) for a window in which other programs use under `threshold` of the CPU:
    on a shared 2-core machine one busy neighbour halves a 2-thread run. Returns the last busy fraction."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy = cpu_busy(window_s)
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def run_json(cmd, env=None, timeout=3600):
    """Runs cmd; returns the JSON objects it printed, one a line. Raises with its stderr on failure."""
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}:\n{p.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def by_phase(lines):
    return {d["phase"]: d for d in lines}


def machine_info():
    cpu = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            cpu.setdefault(k.strip(), v.strip())
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu": cpu.get("model name"), "cpu_family": cpu.get("cpu family"), "cpu_model": cpu.get("model"),
            "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2 ** 20, 1), "kernel": platform.release(),
            "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_VARS}}


def model_costs(cfg, batch, seq):
    """Useful FLOPs of one prefill (GEMMs and attention; causal attention counted for the keys each
    query sees, the LM head for the last position of each sequence) and the weight elements one decode
    token reads (embedding row, attention, router, the top-k experts, norms, LM head)."""
    d, inter, vocab, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    hd = cfg.get("head_dim") or d // heads
    experts, top_k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
    attn_weights = 2 * d * heads * hd + 2 * d * kv * hd
    per_token_layer = 2 * attn_weights + 2 * d * experts + top_k * 2 * 3 * d * inter
    attention = 4 * heads * hd * seq * (seq + 1) // 2  # QK^T and PV, one sequence, one layer
    prefill_flops = batch * (layers * (seq * per_token_layer + attention) + 2 * d * vocab)
    decode_elems = d + layers * (attn_weights + experts * d + top_k * 3 * d * inter + 2 * d) + d + vocab * d
    return prefill_flops, decode_elems


def choose_peer_env(ckpt, args):
    """{dtype: env name}, with each candidate's probe and quick timings."""
    names = list(PEER_ENVS) if args.peer_env == "auto" else [args.peer_env]
    trials = {}
    for name in names:
        probe = run_json([PY, os.path.join(BENCH, "peer", "blas_probe.py"), "--threads", str(args.threads)],
                         environment(name))[0]
        trial = {"probe": probe}
        if len(names) > 1 and probe["f32"]["correct"] and probe["bf16"]["correct"]:
            for dt in DTYPES:
                ph = by_phase(run_json([PY, os.path.join(BENCH, "peer", "time_peer.py"), ckpt, "--dtype", dt,
                                        "--threads", str(args.threads), "--runs", "2", "--warmup", "1",
                                        "--new", "32"], environment(name)))
                trial[dt] = {"prefill_tps": ph["prefill"]["tokens_per_s"], "decode_tps": ph["decode"]["tokens_per_s"]}
        log(f"peer env {name}: OpenBLAS {probe['corename']}, torch {probe['cpu_capability']}, "
            f"sgemm error {probe['f32']['max_rel_error']:.1e}"
            + "".join(f"; {dt} prefill {trial[dt]['prefill_tps']:.0f} decode {trial[dt]['decode_tps']:.1f} tok/s"
                      for dt in DTYPES if dt in trial))
        trials[name] = trial
    correct = [n for n in names if trials[n]["probe"]["f32"]["correct"] and trials[n]["probe"]["bf16"]["correct"]]
    if not correct:
        raise RuntimeError(f"the peer's GEMMs are wrong under {', '.join(names)}: see blas_probe.py's output {trials}")
    if len(names) == 1:
        return {dt: names[0] for dt in DTYPES}, trials
    # Prefill and decode count alike: the geometric mean of the two rates.
    chosen = {dt: max((n for n in trials if dt in trials[n]),
                      key=lambda n: math.sqrt(trials[n][dt]["prefill_tps"] * trials[n][dt]["decode_tps"]))
              for dt in DTYPES}
    return chosen, trials


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.path.join(BENCH, "configs", "small-mixtral.json"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peer-env", choices=["auto", *PEER_ENVS], default=PEER_ENV_DEFAULT)
    ap.add_argument("--idle-wait", type=float, default=300,
                    help="seconds to wait, before each timed process, for the machine to go idle (0: don't)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--json", default=None, help="result file (default BUILD_DIR/cpu_bench.json)")
    args = ap.parse_args()
    json_path = args.json or os.path.join(args.build_dir, "cpu_bench.json")
    load_before = os.getloadavg()
    started = datetime.datetime.now().astimezone()

    with open(args.config) as f:
        cfg = json.load(f)
    log("checkpoint: making or reusing the cached one ...")
    ckpt = make_random_checkpoint.cached_checkpoint(args.config, args.seed, "f32")
    log(f"checkpoint: {ckpt}")

    ours_bin = os.path.join(args.build_dir, "bin", "moe_bench_generate")
    ours_note = None
    if not os.access(ours_bin, os.X_OK):
        ours_note = (f"our engine's benchmark {ours_bin} is not built (cmake --build {args.build_dir} "
                     f"--target moe_bench_generate): running the peer only")
        log(ours_note)

    peer_env, trials = choose_peer_env(ckpt, args)
    log(f"peer env: {peer_env}")
    def measure_peaks():
        return run_json([PY, os.path.join(BENCH, "machine_peaks.py"), "--threads", str(args.threads)],
                        environment(peer_env["f32"]))[0]

    def log_peaks(when, p):
        log(f"peaks ({when}): f32 {p['f32_gflops']:.0f} GFLOP/s, bf16 {p['bf16_gflops']:.0f} GFLOP/s, "
            f"copy {p['copy_gbs']:.1f} GB/s, read {p['read_gbs']:.1f} GB/s")

    peaks_before = measure_peaks()
    log_peaks("before", peaks_before)

    common = ["--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup),
              "--batch", str(BATCH), "--seq", str(SEQ), "--prompt", str(PROMPT), "--new", str(NEW)]
    runs = {}  # (engine, dtype) -> list of per-process results
    for rep in range(args.reps):
        for dt in DTYPES:
            engines = ["ours", "pytorch"] if rep % 2 == 0 else ["pytorch", "ours"]
            for engine in engines:
                if engine == "ours":
                    if ours_note:
                        continue
                    cmd, env = [ours_bin, ckpt, "--dtype", dt, *common], None
                else:
                    cmd = [PY, os.path.join(BENCH, "peer", "time_peer.py"), ckpt, "--dtype", dt, *common]
                    env = environment(peer_env[dt])
                busy_before = wait_until_idle(args.idle_wait)
                try:
                    ph = by_phase(run_json(cmd, env))
                except RuntimeError as e:
                    if engine != "ours":
                        raise
                    ours_note = f"our engine failed, running the peer only: {e}"
                    log(ours_note)
                    continue
                ph["cpu_busy_before"] = busy_before
                ph["load_average_after"] = os.getloadavg()[0]
                runs.setdefault((engine, dt), []).append(ph)
                log(f"rep {rep + 1}/{args.reps} {engine:7s} {dt:4s}: prefill {ph['prefill']['tokens_per_s']:8.1f} "
                    f"decode {ph['decode']['tokens_per_s']:7.2f} tok/s (CPU {100 * busy_before:.0f}% busy before, "
                    f"load average {ph['load_average_after']:.2f} after)")

    # The ceilings again after the runs, each taken as the higher of the two: a ceiling measured while the
    # shared machine was slow would overstate MFU and bandwidth use (one such f32 figure gave 103% MFU).
    peaks_after = measure_peaks()
    log_peaks("after", peaks_after)
    peaks = {k: max(peaks_before[k], peaks_after[k]) for k in ("f32_gflops", "bf16_gflops", "copy_gbs", "read_gbs")}
    peaks["threads"] = args.threads
    peaks["measured"] = {"before": peaks_before, "after": peaks_after}

    prefill_flops, decode_elems = model_costs(cfg, BATCH, SEQ)
    summary = {}
    for (engine, dt), procs in runs.items():
        pre = [t for p in procs for t in p["prefill"]["runs_s"]]
        dec = [t for p in procs for t in p["decode"]["runs_s"]]
        prefill_tps = procs[0]["prefill"]["tokens"] / statistics.median(pre)
        decode_tps = procs[0]["decode"]["tokens"] / statistics.median(dec)
        peak = peaks["f32_gflops"] if dt == "f32" else peaks["bf16_gflops"]
        summary[f"{engine}/{dt}"] = {
            "engine": engine, "dtype": dt, "prefill_tokens_per_s": prefill_tps, "decode_tokens_per_s": decode_tps,
            # The fastest run: on a shared machine the one least slowed by other work.
            "prefill_tokens_per_s_best": procs[0]["prefill"]["tokens"] / min(pre),
            "decode_tokens_per_s_best": procs[0]["decode"]["tokens"] / min(dec),
            "prefill_runs": len(pre), "decode_runs": len(dec),
            "prefill_mfu": prefill_flops * prefill_tps / procs[0]["prefill"]["tokens"] / (peak * 1e9),
            "decode_bandwidth_use": decode_elems * BYTES[dt] * decode_tps / (peaks["read_gbs"] * 1e9),
            "generated": procs[0]["decode"]["generated"]}
    for dt in DTYPES:
        o, p = summary.get(f"ours/{dt}"), summary.get(f"pytorch/{dt}")
        if o and p:
            o["prefill_ratio"] = o["prefill_tokens_per_s"] / p["prefill_tokens_per_s"]
            o["decode_ratio"] = o["decode_tokens_per_s"] / p["decode_tokens_per_s"]
            same = 0
            for a, b in zip(o["generated"], p["generated"]):
                if a != b:
                    break
                same += 1
            o["greedy_tokens_same_as_peer"] = f"{same}/{len(p['generated'])}"

    load_after = os.getloadavg()
    result = {"date": started.isoformat(timespec="seconds"), "command": " ".join([PY] + sys.argv),
              "machine": machine_info(), "load_average_before": load_before, "load_average_after": load_after,
              "config": cfg, "checkpoint": ckpt, "seed": args.seed, "threads": args.threads, "reps": args.reps,
              "runs_per_process": args.runs, "warmup": args.warmup, "peaks": peaks, "peer_env": peer_env,
              "peer_env_trials": trials, "peer_env_vars": {n: PEER_ENVS[n][0] for n in set(peer_env.values())},
              "peer_removed_vars": {n: list(PEER_ENVS[n][1]) for n in set(peer_env.values())},
              "prefill_flops": prefill_flops, "decode_weight_elements_per_token": decode_elems,
              "ours_note": ours_note, "summary": summary,
              "raw": {f"{e}/{d}": v for (e, d), v in runs.items()}}
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1)

    busy = [p["cpu_busy_before"] for procs in runs.values() for p in procs]
    print(f"date {result['date']}; {result['machine']['cpu']} (family {result['machine']['cpu_family']}), "
          f"{result['machine']['cores']} cores, {args.threads} threads; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after" + (f"; other programs' CPU use before each timed process: "
                                          f"{100 * min(busy):.0f}-{100 * max(busy):.0f}%" if busy else ""))
    for dt in DTYPES:
        probe = trials[peer_env[dt]]["probe"]
        print(f"peer {dt}: env {peer_env[dt]}, OpenBLAS {probe['corename']} kernel, "
              f"torch CPU capability {probe['cpu_capability']}, {probe['torch_threads']} threads")
    print(f"ceilings: f32 GEMM {peaks['f32_gflops']:.0f} GFLOP/s, bf16 GEMM {peaks['bf16_gflops']:.0f} GFLOP/s, "
          f"copy {peaks['copy_gbs']:.1f} GB/s, read {peaks['read_gbs']:.1f} GB/s; prefill {prefill_flops / 1e9:.1f} GFLOP per {BATCH}x{SEQ} batch, "
          f"decode {decode_elems / 1e6:.1f}M weights read per token")
    if ours_note:
        print(ours_note)
    for dt in DTYPES:
        o = summary.get(f"ours/{dt}")
        if o and "greedy_tokens_same_as_peer" in o:
            print(f"{dt}: greedy tokens identical to the peer's for the first {o['greedy_tokens_same_as_peer']}")
    print(f"results: {json_path}\n")
    print("tok/s: median of every timed run (best run in brackets); ratios, MFU and BW use from the medians")
    head = ("engine", "dtype", "prefill tok/s", "decode tok/s", "prefill ours/peer", "decode ours/peer",
            "prefill MFU", "decode BW use")
    rows = []
    for dt in DTYPES:
        for engine in ("ours", "pytorch"):
            s = summary.get(f"{engine}/{dt}")
            if not s:
                continue
            rows.append((engine, dt, f"{s['prefill_tokens_per_s']:.1f} ({s['prefill_tokens_per_s_best']:.1f})",
                         f"{s['decode_tokens_per_s']:.2f} ({s['decode_tokens_per_s_best']:.2f})",
                         f"{s['prefill_ratio']:.2f}x" if "prefill_ratio" in s else "",
                         f"{s['decode_ratio']:.2f}x" if "decode_ratio" in s else "",
                         f"{100 * s['prefill_mfu']:.1f}%", f"{100 * s['decode_bandwidth_use']:.1f}%"))
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


if __name__ == "__main__":
    main()
