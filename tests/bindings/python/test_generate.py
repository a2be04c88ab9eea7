"""generate() with a callback and generate_iter() give the C API's greedy tokens; a callback stops
generation; errors in callbacks come back as themselves."""

import numpy as np
import pytest

import moesdk


def generate_reference(model, reference, **options):
    return model.generate(reference.prompt, max_new_tokens=len(reference.generated), **options)


def test_greedy_generation_matches_c_api(model, reference):
    ids = generate_reference(model, reference)
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, reference.generated)


def test_callback_sees_every_token_in_order(model, reference):
    seen = []
    ids = generate_reference(model, reference, callback=lambda token, text: seen.append((token, text)))
    assert [token for token, _ in seen] == ids.tolist() == reference.generated.tolist()
    assert all(text is None for _, text in seen)  # the fixture has no tokenizer


def test_callback_returning_true_stops_generation(model, reference):
    calls = []

    def stop_after_three(token, text):
        calls.append(token)
        return len(calls) == 3

    ids = generate_reference(model, reference, callback=stop_after_three)
    assert len(calls) == 3
    np.testing.assert_array_equal(ids, reference.generated[:3])


def test_exception_in_callback_stops_and_is_raised(model, reference):
    class Stop(Exception):
        pass

    calls = []

    def fail(token, text):
        calls.append(token)
        raise Stop("from the callback")

    with pytest.raises(Stop, match="from the callback"):
        generate_reference(model, reference, callback=fail)
    assert len(calls) == 1


def test_stop_ids_end_generation_after_the_stop_token(model, reference):
    stop = int(reference.generated[2])
    first = reference.generated.tolist().index(stop)
    ids = generate_reference(model, reference, stop_ids=[stop])
    np.testing.assert_array_equal(ids, reference.generated[: first + 1])


def test_same_seed_same_samples(model, reference):
    a = generate_reference(model, reference, temperature=1.0, seed=7)
    b = generate_reference(model, reference, temperature=1.0, seed=7)
    np.testing.assert_array_equal(a, b)


def test_zero_new_tokens_gives_an_empty_array(model, reference):
    assert model.generate(reference.prompt, max_new_tokens=0).shape == (0,)


def test_iterator_yields_the_same_tokens(model, reference):
    pairs = list(model.generate_iter(reference.prompt, max_new_tokens=len(reference.generated)))
    assert [token for token, _ in pairs] == reference.generated.tolist()
    assert all(text is None for _, text in pairs)


def test_iterator_closed_early_stops_generation(model, reference):
    with model.generate_iter(reference.prompt, max_new_tokens=200) as stream:
        first = [next(stream)[0] for _ in range(2)]
    assert first == reference.generated[:2].tolist()
    # Only what was queued before the stop remains: the worker never runs further ahead than that.
    assert len(list(stream)) <= moesdk.TokenStream.MAX_AHEAD


def test_iterator_raises_the_library_error(model, reference):
    stream = model.generate_iter([1, 2, 10**6], max_new_tokens=4)
    with pytest.raises(moesdk.InvalidArgumentError) as raised:
        next(stream)
    assert "1000000" in str(raised.value)
    with pytest.raises(StopIteration):
        next(stream)
