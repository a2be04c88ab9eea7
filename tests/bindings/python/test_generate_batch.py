"""generate_batch() gives, row by row, the tokens generate() gives for each prompt alone; its callback
sees every row's tokens and can end one row or all of them."""

import numpy as np
import pytest

import moesdk
from test_logits import sequences_of

NEW = 6


def test_each_row_is_what_generate_gives_alone(model, reference):
    prompts = sequences_of(reference)
    rows = model.generate_batch(reference.ids, reference.lengths, max_new_tokens=NEW)
    assert len(rows) == len(prompts)
    for prompt, row in zip(prompts, rows):
        assert row.dtype == np.int32
        np.testing.assert_array_equal(row, model.generate(prompt, max_new_tokens=NEW))


def test_sampled_row_r_uses_seed_plus_r(model, reference):
    prompts = [p.tolist() for p in sequences_of(reference)]
    rows = model.generate_batch(prompts, max_new_tokens=NEW, temperature=0.9, seed=11)
    for r, (prompt, row) in enumerate(zip(prompts, rows)):
        np.testing.assert_array_equal(row, model.generate(prompt, max_new_tokens=NEW, temperature=0.9, seed=11 + r))


def test_callback_sees_every_token_and_ends_rows(model, reference):
    seen = []

    def stop_row_1_after_two(row, token, text):
        seen.append((row, token))
        assert text is None  # the fixture has no tokenizer
        return row == 1 and sum(1 for r, _ in seen if r == 1) == 2

    rows = model.generate_batch(reference.ids, reference.lengths, max_new_tokens=NEW, callback=stop_row_1_after_two)
    assert [len(r) for r in rows] == [NEW, 2, NEW]
    for r, row in enumerate(rows):
        assert [t for rr, t in seen if rr == r] == row.tolist()


def test_stop_all_ends_every_row(model, reference):
    rows = model.generate_batch(reference.ids, reference.lengths, max_new_tokens=NEW,
                                callback=lambda row, token, text: moesdk.GENERATE_STOP_ALL)
    assert [len(r) for r in rows] == [1, 0, 0]  # rows after the stopping one get no token in that step


def test_callback_exception_is_raised_as_itself(model, reference):
    def fail(row, token, text):
        raise KeyError("from the batch callback")

    with pytest.raises(KeyError, match="from the batch callback"):
        model.generate_batch(reference.ids, reference.lengths, max_new_tokens=NEW, callback=fail)


def test_bad_prompt_names_the_row(model):
    with pytest.raises(moesdk.InvalidArgumentError, match="5000"):
        model.generate_batch([[1, 2], [3, 5000]], max_new_tokens=2)
