"""Library errors surface as moesdk exceptions carrying the library's message."""

import pickle

import numpy as np
import pytest

import moesdk
from conftest import MIXTRAL


def test_missing_checkpoint_names_the_directory(context):
    with pytest.raises(moesdk.NotFoundError) as raised:
        moesdk.Model(context, "/nonexistent/checkpoint")
    assert "/nonexistent/checkpoint" in str(raised.value)
    assert isinstance(raised.value, moesdk.Error)
    assert raised.value.status == 10
    assert raised.value.status_name == "MOE_ERR_NOT_FOUND"


def test_token_id_out_of_range_is_an_invalid_argument(model):
    with pytest.raises(moesdk.InvalidArgumentError) as raised:
        model.forward(np.array([1, 2, 5000], dtype=np.int32))
    assert isinstance(raised.value, ValueError)
    assert raised.value.status == 1
    assert "5000" in str(raised.value)


def test_sequence_limit_is_a_limit_error(model, reference):
    with pytest.raises(moesdk.LimitError, match="maximum sequence length"):
        model.generate(reference.prompt, max_new_tokens=1000)


def test_unknown_backend_is_reported(tmp_path):
    with pytest.raises(moesdk.Error) as raised:
        moesdk.Context(backend="tpu", plugin_dirs=[str(tmp_path)], search_default_dirs=False)
    assert raised.value.status == 7  # MOE_ERR_PLUGIN: nothing in an empty directory
    assert str(tmp_path) in str(raised.value)


def test_status_names():
    assert moesdk.status_string(3) == "MOE_ERR_FORMAT"
    assert moesdk.status_string(0) == "MOE_OK"


def test_errors_pickle_with_their_status():
    error = pickle.loads(pickle.dumps(moesdk.errors.from_status(9, "too long")))
    assert type(error) is moesdk.LimitError and error.status == 9 and str(error) == "too long"


def test_calls_on_a_closed_model_raise(context):
    model = moesdk.Model(context, str(MIXTRAL))
    model.close()
    assert model.closed
    with pytest.raises(ValueError, match="Model is closed"):
        model.describe()
    model.close()  # closing twice is harmless
