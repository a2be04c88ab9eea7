"""Load a checkpoint and generate with the Python binding (moesdk).

    python3 generate.py MODEL_DIR [PROMPT]

With a tokenizer.json in MODEL_DIR the prompt is text and the output is printed as it is produced;
without one, the prompt is the ids 1 2 3 and the new ids are printed.
"""

import sys

import moesdk


def main(model_dir, prompt_text="The experts"):
    with moesdk.Context() as ctx, moesdk.Model(ctx, model_dir) as model:
        info = model.describe()
        print(f"{info.architecture}, {info.num_layers} layers, {info.num_experts} experts, on {ctx.backend}")
        try:
            tokenizer = model.tokenizer
            prompt = tokenizer.encode(prompt_text, add_special=True)
            print(prompt_text, end="")
        except moesdk.NotFoundError:  # no tokenizer.json: keep the ids
            tokenizer = None
            prompt = [1, 2, 3]

        # Tokens as they come: generate_iter runs generation on a worker thread.
        ids = []
        for token_id, text in model.generate_iter(prompt, max_new_tokens=16):
            ids.append(token_id)
            if text is not None:
                print(text, end="", flush=True)
        print(f"\ngenerated {len(ids)} tokens: {' '.join(map(str, ids))}")

        # The whole batch's logits at once, as a numpy array.
        logits = model.forward([prompt, prompt[:2]], last_only=True)
        print(f"next-token logits of a batch of 2: shape {logits.shape}, argmax {logits.argmax(axis=1).tolist()}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(*sys.argv[1:3])
