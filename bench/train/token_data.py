"""Tokenised training data as `moe train` reads it: a .safetensors file with an int64 `input_ids`
[sequences, tokens] (and optionally `labels`). Text is tokenised the way tools/moe/training_data.cpp
tokenises a text --data file (paragraph by paragraph, each ending after its blank line, ids
concatenated, cut into whole sequences), so either form gives the same ids."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import safetensors_numpy  # noqa: E402


def paragraphs(text):
    start = 0
    while start < len(text):
        end = text.find("\n\n", start)
        end = len(text) if end < 0 else end + 2
        yield text[start:end]
        start = end


def tokenise_corpus(tokenizer, text, seq_len):
    ids = []
    for p in paragraphs(text):
        ids.extend(tokenizer.encode(p))
    n = len(ids) // seq_len
    if n < 1:
        raise ValueError(f"{len(ids)} tokens: fewer than one sequence of {seq_len}")
    return np.asarray(ids[:n * seq_len], dtype=np.int64).reshape(n, seq_len)


def write(path, tensors):
    """tensors: {name: int64 array}."""
    safetensors_numpy.write(path, {k: ("I64", v.shape) for k, v in tensors.items()}, lambda k: tensors[k])


def read(path):
    return {k: a for k, (_, a) in safetensors_numpy.read(path).items()}


def split_off(array, fraction):
    """tools/moe/training_data.cpp's Dataset::split_off: the last max(1, int(n * fraction)) rows held out."""
    if fraction <= 0:
        return array, array[:0]
    n = max(1, int(len(array) * fraction))
    return array[:len(array) - n], array[len(array) - n:]
