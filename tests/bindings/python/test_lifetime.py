"""Handles are freed: by close(), by `with`, and by dropping the last reference; what a model needs
stays alive when its context is closed first."""

import gc
import threading

import numpy as np
import pytest

import moesdk
from conftest import MIXTRAL, make_context, rss_bytes

LOADS = 20  # each open model holds its weights (~1.4 MB) in backend memory


def load(context):
    return moesdk.Model(context, str(MIXTRAL))


def test_closed_models_give_their_memory_back(context):
    for _ in range(3):  # warm up allocator pools and the backend's scratch memory
        load(context).close()
    gc.collect()

    start = rss_bytes()
    for _ in range(LOADS):
        load(context).close()
    after_closed = rss_bytes()

    kept = [load(context) for _ in range(LOADS)]
    after_kept = rss_bytes()
    for model in kept:
        model.close()

    grown_kept = after_kept - after_closed
    grown_closed = after_closed - start
    weights = (MIXTRAL / "model.safetensors").stat().st_size
    assert grown_kept > LOADS * weights // 2, f"{LOADS} open models only took {grown_kept} bytes"
    assert grown_closed < grown_kept // 4, f"closing leaked: {grown_closed} bytes vs {grown_kept} kept"


def test_dropping_the_last_reference_frees_the_model(context):
    for _ in range(3):
        load(context)
    gc.collect()
    start = rss_bytes()
    for _ in range(LOADS):
        load(context)  # never closed: freed when the reference goes
    grown = rss_bytes() - start
    weights = (MIXTRAL / "model.safetensors").stat().st_size
    assert grown < LOADS * weights // 4


def test_with_closes(context):
    with moesdk.Model(context, str(MIXTRAL)) as model:
        assert not model.closed
    assert model.closed
    with pytest.raises(ValueError, match="closed"):
        model.forward([1, 2, 3])


def test_model_outlives_its_context(reference):
    with make_context() as ctx:
        model = moesdk.Model(ctx, str(MIXTRAL))
    assert ctx.closed
    with pytest.raises(ValueError, match="Context is closed"):
        ctx.backend
    np.testing.assert_array_equal(model.forward(reference.ids, reference.lengths), reference.logits)
    model.close()


def test_context_reports_its_backend_and_plugins(context):
    assert context.backend == "cpu"
    assert context.device
    plugins = context.plugins()
    cpu = [p for p in plugins if p.name == "cpu"]
    assert len(cpu) == 1 and cpu[0].state == moesdk.PLUGIN_LOADED and cpu[0].kind == moesdk.PLUGIN_KIND_BACKEND


def test_log_callback_receives_the_librarys_lines():
    lines = []
    with make_context(log_level=moesdk.LOG_DEBUG, log_callback=lambda level, text: lines.append((level, text))):
        pass
    assert any(level == moesdk.LOG_INFO and "backend cpu" in text for level, text in lines), lines


def test_closed_trainers_give_their_memory_back(context):
    """A trainer holds the optimizer's two moments per weight (twice the weights) once it has stepped."""
    from conftest import create_model, training_ids

    trainers = 12
    with create_model(context) as model:

        def stepped_trainer():
            t = moesdk.Trainer(model)
            t.step(training_ids(2))
            return t

        for _ in range(2):
            stepped_trainer().close()
        gc.collect()
        start = rss_bytes()
        for _ in range(trainers):
            stepped_trainer().close()
        after_closed = rss_bytes()
        kept = [stepped_trainer() for _ in range(trainers)]
        after_kept = rss_bytes()
        for t in kept:
            t.close()
    grown_kept = after_kept - after_closed
    grown_closed = after_closed - start
    moments = 2 * (MIXTRAL / "model.safetensors").stat().st_size  # the created model has the fixture's shapes
    assert grown_kept > trainers * moments // 2, f"{trainers} open trainers only took {grown_kept} bytes"
    assert grown_closed < grown_kept // 4, f"closing leaked: {grown_closed} bytes vs {grown_kept} kept"


def test_closing_the_model_stops_its_open_streams(context, reference):
    """The stream's worker holds the model open and waits for the reader once it is MAX_AHEAD tokens
    ahead: closing the model must stop it rather than wait for it."""
    model = moesdk.Model(context, str(MIXTRAL))
    stream = model.generate_iter(reference.prompt, max_new_tokens=64)
    first = next(stream)
    done = threading.Event()
    threading.Thread(target=lambda: (model.close(), done.set()), daemon=True).start()
    assert done.wait(timeout=30), "model.close() waited for a stream nobody reads"
    rest = list(stream)  # what was queued before the stop, then the end
    assert len(rest) <= moesdk.TokenStream.MAX_AHEAD
    np.testing.assert_array_equal([first[0]] + [t for t, _ in rest], reference.generated[: 1 + len(rest)])
    with pytest.raises(ValueError, match="Model is closed"):
        model.generate_iter(reference.prompt)
