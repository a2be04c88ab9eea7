"""forward() gives the C API's logits, bit for bit, whatever form the batch comes in."""

import numpy as np
import pytest

import moesdk


def sequences_of(reference):
    ends = np.cumsum(reference.lengths)
    return [reference.ids[end - n : end] for n, end in zip(reference.lengths, ends)]


def test_packed_batch_matches_c_api(model, reference):
    logits = model.forward(reference.ids, reference.lengths)
    assert logits.dtype == np.float32
    assert logits.shape == reference.logits.shape
    np.testing.assert_array_equal(logits, reference.logits)


def test_ragged_list_matches_c_api(model, reference):
    lists = [s.tolist() for s in sequences_of(reference)]
    np.testing.assert_array_equal(model.forward(lists), reference.logits)


# A batch of another composition runs GEMMs of other shapes: the same numbers up to rounding.
def assert_same_up_to_rounding(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_two_dimensional_batch_is_rows_of_equal_length(model, reference):
    first = sequences_of(reference)[0]
    batch = np.stack([first, first])
    logits = model.forward(batch)
    rows = len(first)
    assert logits.shape == (2 * rows, reference.logits.shape[1])
    assert_same_up_to_rounding(logits[:rows], reference.logits[:rows])
    assert_same_up_to_rounding(logits[rows:], reference.logits[:rows])


def test_last_only_gives_each_sequences_last_row(model, reference):
    logits = model.forward(reference.ids, reference.lengths, last_only=True)
    last_rows = np.cumsum(reference.lengths) - 1
    assert logits.shape == (len(reference.lengths), reference.logits.shape[1])
    assert_same_up_to_rounding(logits, reference.logits[last_rows])


def test_out_array_is_written_in_place(model, reference):
    out = np.full(reference.logits.shape, np.nan, dtype=np.float32)
    result = model.forward(reference.ids, reference.lengths, out=out)
    assert result is out
    np.testing.assert_array_equal(out, reference.logits)


def test_other_integer_dtypes_are_converted(model, reference):
    logits = model.forward(reference.ids.astype(np.int64), reference.lengths.astype(np.int32))
    np.testing.assert_array_equal(logits, reference.logits)


def test_wrong_out_shape_is_rejected(model, reference):
    with pytest.raises(ValueError, match="out must have shape"):
        model.forward(reference.ids, reference.lengths, out=np.zeros((3, 3), np.float32))


def test_lengths_that_do_not_add_up_are_rejected_before_the_library_reads(model, reference):
    with pytest.raises(ValueError, match="add up to"):
        model.forward(reference.ids[:-1], reference.lengths)


def test_ids_beyond_int32_are_rejected(model):
    with pytest.raises(ValueError, match="int32"):
        model.forward(np.array([1, 2**40], dtype=np.int64))


def test_describe_reports_the_fixture(model, reference):
    info = model.describe()
    assert isinstance(info, moesdk.ModelInfo)
    assert info.architecture == "mixtral"
    assert info.vocab_size == reference.logits.shape[1]
    assert (info.num_experts, info.experts_per_token, info.num_layers) == (8, 2, 2)
    assert info.dtype == "f32"
    assert 0 < info.active_parameters < info.num_parameters


def test_saved_model_gives_the_same_logits(context, model, reference, tmp_path):
    model.save(str(tmp_path / "saved"))
    with moesdk.Model(context, str(tmp_path / "saved")) as reloaded:
        np.testing.assert_array_equal(reloaded.forward(reference.ids, reference.lengths), reference.logits)
