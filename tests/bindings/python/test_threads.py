"""The GIL is released while the library works: two Python threads generate at the same time."""

import sys
import threading

import numpy as np


def test_two_threads_generate_concurrently(model, reference):
    prompt = reference.prompt
    new_tokens = 96
    expected = model.generate(prompt, max_new_tokens=new_tokens)
    events = []  # thread names, in the order their tokens arrived
    b_started = threading.Event()
    results = {}

    def on_token_a(token, text):
        events.append("a")
        if len(events) == 1:
            # Released only by b's first token. If generate() held the GIL, b would then run its whole
            # generation before a could take the GIL back.
            assert b_started.wait(timeout=60)

    def on_token_b(token, text):
        events.append("b")
        b_started.set()

    def run(name, callback):
        results[name] = model.generate(prompt, max_new_tokens=new_tokens, callback=callback)

    # Python threads now switch only where the GIL is released (no preemption every 5 ms).
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(100)
    try:
        a = threading.Thread(target=run, args=("a", on_token_a))
        a.start()
        while not events:  # a is inside generate, waiting in its first callback
            a.join(0.001)
        b = threading.Thread(target=run, args=("b", on_token_b))
        b.start()
        a.join()
        b.join()
    finally:
        sys.setswitchinterval(old_interval)

    np.testing.assert_array_equal(results["a"], expected)
    np.testing.assert_array_equal(results["b"], expected)
    second_a = events.index("a", 1)
    last_b = len(events) - 1 - events[::-1].index("b")
    assert second_a < last_b, "thread a made no progress while thread b was generating"


def test_threads_forward_the_same_logits(model, reference):
    results = [None] * 4

    def run(i):
        results[i] = model.forward(reference.ids, reference.lengths)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for logits in results:
        np.testing.assert_array_equal(logits, reference.logits)
