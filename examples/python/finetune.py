"""Fine-tune a model with LoRA through the Python binding (moesdk), save it, and generate from it.

    python3 finetune.py MODEL OUT_DIR [STEPS [THREADS]]

MODEL is a checkpoint directory (loaded) or a config.json (a new model with random weights). The task
is small on purpose: a cycle of eight tokens (10 20 30 ... 80, then 10 again) that the model learns in a
few dozen steps, so that generating after "10 20 30" continues the cycle. LoRA adapters train on the
attention and MLP projections; they are merged into the weights before saving, so OUT_DIR is a plain
checkpoint that any program can load. THREADS: CPU threads (default: one per core; a model this small
trains as fast on one, and a busy machine slows many threads down more than one).
"""

import os
import sys

import numpy as np

import moesdk

CYCLE = np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype=np.int32)
SEQ_LEN = 12


def cycle_sequences():
    """The cycle read from each of its positions: int32 [len(CYCLE), SEQ_LEN]."""
    positions = np.arange(len(CYCLE))[:, None] + np.arange(SEQ_LEN)[None, :]
    return CYCLE[positions % len(CYCLE)]


def main(model_path, out_dir, steps="30", threads="0"):
    steps = int(steps)
    with moesdk.Context(num_threads=int(threads)) as ctx:
        if os.path.isfile(model_path):
            model = moesdk.Model.create(ctx, model_path, seed=1)
        else:
            model = moesdk.Model(ctx, model_path, dtype="f32")  # the weights LoRA merges into must be f32
        with model:
            data = cycle_sequences()

            with moesdk.Trainer(model, lr=5e-2, lora_rank=8, lora_alpha=16, lora_experts=True, seed=1,
                                schedule="cosine", warmup_steps=4, total_steps=steps) as trainer:
                before = trainer.evaluate(data).loss

                def progress(stats):
                    if stats.step % 10 == 0 or stats.step == steps:
                        print(f"step {stats.step:3d}  loss {stats.loss:.3f}  lr {stats.lr:.2e}")
                    return False  # True would stop training (CancelledError)

                trainer.train(data, batch_size=4, until_step=steps, progress=progress)
                after = trainer.evaluate(data).loss
                print(f"loss {before:.3f} -> {after:.3f}")
                trainer.merge_lora()
            model.save(out_dir)

    # The saved checkpoint is an ordinary model directory.
    with moesdk.Context(num_threads=int(threads)) as ctx, moesdk.Model(ctx, out_dir) as tuned:
        prompt = CYCLE[:3]
        ids = tuned.generate(prompt, max_new_tokens=8)
        print(f"generated {len(ids)} tokens after {' '.join(map(str, prompt))}: {' '.join(map(str, ids))}")
    expected = np.roll(CYCLE, -3)
    if not np.array_equal(ids, expected):
        sys.exit(f"the fine-tuned model did not continue the cycle (expected {' '.join(map(str, expected))})")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:5])
