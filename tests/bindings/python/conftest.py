"""Fixtures of the Python binding tests: a CPU context on the build's plugins, the mixtral fixture,
and what the C API computed for the same inputs (tests/bindings/reference_logits.c)."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import moesdk

SOURCE_DIR = Path(os.environ["MOE_SOURCE_DIR"])
MIXTRAL = SOURCE_DIR / "tests" / "reference" / "mixtral"


@dataclass
class Reference:
    lengths: np.ndarray  # int64 [sequences]
    ids: np.ndarray  # int32 [tokens], the sequences packed
    logits: np.ndarray  # float32 [tokens, vocab]
    prompt: np.ndarray  # int32
    generated: np.ndarray  # int32, greedy


def read_reference(path):
    data = Path(path).read_bytes()
    offset = 0

    def take(dtype, count):
        nonlocal offset
        array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        offset += array.nbytes
        return array

    sequences, tokens, vocab = take("<i8", 3)
    lengths = take("<i8", sequences)
    ids = take("<i4", tokens)
    logits = take("<f4", tokens * vocab).reshape(tokens, vocab)
    prompt = take("<i4", take("<i8", 1)[0])
    generated = take("<i4", take("<i8", 1)[0])
    assert offset == len(data), "reference file has trailing bytes"
    return Reference(lengths, ids, logits, prompt, generated)


def make_context(**options):
    return moesdk.Context(
        backend="cpu", plugin_dirs=[os.environ["MOE_PLUGIN_DIR"]], search_default_dirs=False, **options
    )


@pytest.fixture(scope="session")
def reference():
    return read_reference(os.environ["MOE_BINDINGS_REFERENCE"])


@pytest.fixture(scope="session")
def context():
    with make_context() as ctx:
        yield ctx


@pytest.fixture(scope="session")
def model(context):
    with moesdk.Model(context, str(MIXTRAL)) as m:
        yield m


@pytest.fixture(scope="session")
def model_with_tokenizer(context):
    """The mixtral fixture with the DeepSeek-V3 tokenizer.json beside it (tests/bindings/CMakeLists.txt)."""
    with moesdk.Model(context, os.environ["MOE_TOKENIZER_MODEL"]) as m:
        yield m


def rss_bytes():
    """Resident memory of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


# ---- training: what tests/bindings/reference_training.c computed through the C API ----

TRAINING_CONFIG = os.environ["MOE_TRAINING_CONFIG"]
TRAINING_SEED = 7  # the seed of every model the reference created
VOCAB = 320


def training_ids(rows, seq_len=8):
    """The reference's data: row r, position t is (r * 37 + t * 11 + 5) mod 320."""
    r = np.arange(rows)[:, None]
    t = np.arange(seq_len)[None, :]
    return ((r * 37 + t * 11 + 5) % VOCAB).astype(np.int32)


def read_training_reference(path):
    """{name: [records]}, each record a list of floats, in file order."""
    records = {}
    for line in Path(path).read_text().splitlines():
        name, *values = line.split()
        records.setdefault(name, []).append([float(v) for v in values])
    return records


@pytest.fixture(scope="session")
def training_reference():
    return read_training_reference(os.environ["MOE_TRAINING_REFERENCE"])


def create_model(context, **options):
    return moesdk.Model.create(context, TRAINING_CONFIG, seed=TRAINING_SEED, **options)
