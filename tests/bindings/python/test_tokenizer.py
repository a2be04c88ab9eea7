"""Tokenizers: loaded from tokenizer.json or borrowed from a model; generation callbacks get text."""

import os
from pathlib import Path

import numpy as np
import pytest

import moesdk

TEXT = "Mixture of experts: 混合专家 🙂"


@pytest.fixture(scope="module")
def tokenizer(context):
    with moesdk.Tokenizer(context, str(Path(os.environ["MOE_TOKENIZER_MODEL"]) / "tokenizer.json")) as tok:
        yield tok


def test_round_trip(tokenizer):
    ids = tokenizer.encode(TEXT)
    assert ids.dtype == np.int32 and len(ids) > 3
    assert tokenizer.decode(ids) == TEXT


def test_model_tokenizer_is_the_same(model_with_tokenizer, tokenizer):
    borrowed = model_with_tokenizer.tokenizer
    np.testing.assert_array_equal(borrowed.encode(TEXT), tokenizer.encode(TEXT))


def test_model_without_tokenizer_raises_not_found(model):
    with pytest.raises(moesdk.NotFoundError, match="tokenizer"):
        model.tokenizer


def test_generation_callback_gets_the_text(model_with_tokenizer, reference):
    pieces = []
    ids = model_with_tokenizer.generate(
        reference.prompt, max_new_tokens=len(reference.generated), callback=lambda t, text: pieces.append(text)
    )
    np.testing.assert_array_equal(ids, reference.generated)
    assert all(isinstance(p, str) for p in pieces)
    decoded = model_with_tokenizer.tokenizer.decode(ids)
    # Streaming emits complete UTF-8 only: the pieces are a prefix of the whole decode.
    assert "".join(pieces) and decoded.startswith("".join(pieces))


def test_borrowed_tokenizer_stops_with_its_model(context):
    model = moesdk.Model(context, os.environ["MOE_TOKENIZER_MODEL"])
    borrowed = model.tokenizer
    model.close()
    with pytest.raises(ValueError, match="Model is closed"):
        borrowed.encode(TEXT)


def test_missing_tokenizer_file_names_it(context, tmp_path):
    with pytest.raises(moesdk.Error) as raised:
        moesdk.Tokenizer(context, str(tmp_path / "nothing.json"))
    assert "nothing.json" in str(raised.value)
