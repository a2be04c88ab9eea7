"""Trainer behaviour: progress callbacks cancel and raise, bad input raises with the library's message,
save/resume continues exactly, handles close in the right order, and the GIL is released while it
trains."""

import os
import signal
import sys
import threading

import numpy as np
import pytest

import moesdk
from conftest import create_model, training_ids

# ---- the progress callback ----


def test_progress_returning_true_cancels_with_the_librarys_message(context):
    steps = []
    with create_model(context) as model, moesdk.Trainer(model, lr=1e-2) as trainer:
        with pytest.raises(moesdk.CancelledError, match="cancelled by the progress callback at step 2") as raised:
            trainer.train(training_ids(6), batch_size=2, until_step=5,
                          progress=lambda s: steps.append(s.step) or s.step == 2)
        assert raised.value.status == 8 and raised.value.status_name == "MOE_ERR_CANCELLED"
        assert steps == [1, 2]
        # The steps taken are kept: training on to step 3 takes one more step.
        last = trainer.train(training_ids(6), batch_size=2, until_step=3, progress=lambda s: steps.append(s.step))
        assert steps == [1, 2, 3] and last.step == 3
        assert trainer.train(training_ids(6), batch_size=2, until_step=3) is None  # nothing left to do


def test_an_exception_in_progress_stops_training_and_is_raised_as_itself(context):
    calls = []

    def progress(stats):
        calls.append(stats.step)
        raise KeyError("from the progress callback")

    with create_model(context) as model, moesdk.Trainer(model) as trainer:
        with pytest.raises(KeyError, match="from the progress callback"):
            trainer.train(training_ids(4), batch_size=2, until_step=4, progress=progress)
    assert calls == [1]


# ---- bad input ----


@pytest.fixture
def trainer(context):
    with create_model(context) as model, moesdk.Trainer(model) as t:
        yield t


def test_token_id_out_of_range_raises_with_the_librarys_message(trainer):
    ids = training_ids(2)
    ids[1, 3] = 5000
    with pytest.raises(moesdk.InvalidArgumentError, match="token id 5000 at row 1") as raised:
        trainer.step(ids)
    assert isinstance(raised.value, ValueError) and raised.value.status == 1


def test_empty_batch_raises_with_the_librarys_message(trainer):
    for empty in (np.zeros((0, 8), np.int32), np.zeros((2, 0), np.int32), np.zeros((2, 1), np.int32)):
        with pytest.raises(moesdk.InvalidArgumentError, match="the batch is empty"):
            trainer.step(empty)
    with pytest.raises(moesdk.InvalidArgumentError, match="the batch is empty"):
        trainer.train(np.zeros((0, 8), np.int32), batch_size=2, until_step=1)


def test_labels_of_the_wrong_shape_are_refused_before_the_library_reads_them(trainer):
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 8\)"):
        trainer.step(training_ids(2), training_ids(1))


def test_classification_labels_are_checked(context):
    with create_model(context) as model, moesdk.Trainer(model, task="sequence_classification", num_labels=3) as t:
        with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
            t.step(training_ids(2), np.array([[0, 1]]))
        with pytest.raises(moesdk.InvalidArgumentError, match="label 7"):
            t.step(training_ids(2), np.array([7, 0]))
        with pytest.raises(moesdk.InvalidArgumentError, match="labels"):
            t.step(training_ids(2))  # a head needs labels


def test_options_are_checked(context):
    with create_model(context) as model:
        with pytest.raises(TypeError, match="unknown trainer option 'learning_rate'.*lr"):
            moesdk.Trainer(model, learning_rate=1e-3)
        with pytest.raises(ValueError, match='schedule="linear" is not one of: constant, cosine'):
            moesdk.Trainer(model, schedule="linear")
        with pytest.raises(TypeError, match="lora_rank takes an integer"):
            moesdk.Trainer(model, lora_rank=4.5)
        with pytest.raises(moesdk.InvalidArgumentError, match="sequence classification needs num_labels >= 2"):
            moesdk.Trainer(model, task=moesdk.TASK_SEQUENCE_CLASSIFICATION)
        with pytest.raises(moesdk.InvalidArgumentError, match="not a valid regular expression"):
            moesdk.Trainer(model, freeze_patterns=["("])


def test_full_training_of_bf16_weights_is_unsupported(context):
    with create_model(context, dtype="bf16") as model:
        with pytest.raises(moesdk.UnsupportedError, match="needs f32 weights"):
            moesdk.Trainer(model)
        moesdk.Trainer(model, lora_rank=2).close()  # LoRA runs on bf16


def test_default_options_are_the_librarys():
    defaults = moesdk.Trainer.default_options()
    assert defaults["lr"] == pytest.approx(1e-3) and defaults["ignore_index"] == -100
    assert defaults["lora_attention"] is True and defaults["freeze_patterns"] == []


# ---- arrays ----


def test_other_integer_arrays_give_the_same_step(context):
    ids = training_ids(2)
    losses = []
    for batch in (ids, ids.astype(np.int64), ids.tolist(), np.asfortranarray(ids)):
        with create_model(context) as model, moesdk.Trainer(model, seed=1) as t:
            losses.append(t.step(batch).loss)
    assert len(set(losses)) == 1, losses


def test_causal_lm_labels_with_ignore_index(trainer):
    ids = training_ids(2)
    labels = np.full_like(ids, -100)
    labels[:, 1:4] = ids[:, 1:4]
    assert trainer.evaluate(ids, labels).tokens == 2 * 3  # positions 1..3 of each row are scored


# ---- save and resume ----


def test_resumed_run_continues_exactly(context, tmp_path):
    options = dict(lr=1e-2, seed=2, schedule="cosine", warmup_steps=1, total_steps=4, grad_accumulation=1)
    data = training_ids(6)
    straight = []
    with create_model(context) as model, moesdk.Trainer(model, **options) as trainer:
        trainer.train(data, batch_size=2, until_step=2)
        trainer.save(str(tmp_path / "checkpoint"))
        trainer.train(data, batch_size=2, until_step=4, progress=lambda s: straight.append(s.loss))
    resumed = []
    with moesdk.Model(context, str(tmp_path / "checkpoint"), dtype="f32") as model, moesdk.Trainer(
        model, **options
    ) as trainer:
        trainer.resume(str(tmp_path / "checkpoint"))
        trainer.train(data, batch_size=2, until_step=4, progress=lambda s: resumed.append(s.loss))
    assert len(straight) == 2 and resumed == straight


def test_resume_from_a_missing_directory_names_it(trainer, tmp_path):
    with pytest.raises(moesdk.Error, match="nowhere"):
        trainer.resume(str(tmp_path / "nowhere"))


# ---- handles ----


def test_closing_the_model_closes_its_trainer(context):
    model = create_model(context)
    trainer = moesdk.Trainer(model)
    model.close()
    assert trainer.closed and model.closed
    with pytest.raises(ValueError, match="Trainer is closed"):
        trainer.step(training_ids(2))
    trainer.close()  # harmless


def test_a_trainer_keeps_its_model_alive(context):
    trainer = moesdk.Trainer(create_model(context))
    assert trainer.step(training_ids(2)).step == 1
    assert not trainer.model.closed
    trainer.close()
    with pytest.raises(ValueError, match="Trainer is closed"):
        trainer.evaluate(training_ids(2))


def test_closing_from_inside_progress_raises_instead_of_waiting_for_itself(context):
    with create_model(context) as model, moesdk.Trainer(model) as trainer:
        errors = []

        def progress(stats):
            for close in (trainer.close, model.close):
                try:
                    close()
                except RuntimeError as e:
                    errors.append(str(e))

        trainer.train(training_ids(4), batch_size=2, until_step=1, progress=progress)
        assert len(errors) == 2 and all("from inside one of its own calls" in e for e in errors), errors
        assert not trainer.closed and not model.closed
        assert trainer.evaluate(training_ids(2)).loss > 0  # still usable, and evaluate works from progress too
        inner = []

        def progress_that_runs_the_model(stats):
            inner.append(trainer.evaluate(training_ids(2)).loss)
            inner.append(model.forward(training_ids(1)[0], last_only=True).shape)

        trainer.train(training_ids(4), batch_size=2, until_step=2, progress=progress_that_runs_the_model)
        assert len(inner) == 2 and inner[1] == (1, 320)


def test_ctrl_c_stops_training_between_steps(context):
    """Without a progress callback too: the GIL is released while steps run, and the binding checks for
    signals after each step."""
    with create_model(context) as model, moesdk.Trainer(model) as trainer:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                trainer.train(training_ids(4), batch_size=2, until_step=1_000_000)
        finally:
            timer.cancel()
        assert 0 < trainer.evaluate(training_ids(2)).step < 1_000_000


# ---- the GIL ----


def test_two_threads_train_at_once(context):
    """Each thread trains its own model. If train() held the GIL, thread b would take all its steps once it
    had the GIL, before a could take its second step (as in test_threads.py for generation)."""
    steps_a, steps_b = 4, 16  # b trains long enough that a's second step comes first, however busy the machine
    events = []
    b_started = threading.Event()
    models = [create_model(context) for _ in range(2)]

    def progress_a(stats):
        events.append("a")
        if len(events) == 1:
            assert b_started.wait(timeout=60)

    def progress_b(stats):
        events.append("b")
        b_started.set()

    def run(model, progress, steps):
        with moesdk.Trainer(model, lr=1e-2) as t:
            t.train(training_ids(4), batch_size=2, until_step=steps, progress=progress)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(100)
    try:
        a = threading.Thread(target=run, args=(models[0], progress_a, steps_a))
        a.start()
        while not events:
            a.join(0.001)
        b = threading.Thread(target=run, args=(models[1], progress_b, steps_b))
        b.start()
        a.join()
        b.join()
    finally:
        sys.setswitchinterval(old_interval)
        for m in models:
            m.close()
    assert events.count("a") == steps_a and events.count("b") == steps_b
    second_a = events.index("a", 1)
    last_b = len(events) - 1 - events[::-1].index("b")
    assert second_a < last_b, f"thread a made no progress while thread b was training: {events}"


def test_expert_load_counts_every_routed_token(context):
    with create_model(context) as model, moesdk.Trainer(model) as trainer:
        info = model.describe()
        counts, layers = trainer.expert_load()
        assert counts.shape == (info.num_moe_layers, info.num_experts) and counts.dtype == np.int64
        assert not counts.any()  # nothing routed yet
        for _ in range(2):
            trainer.step(training_ids(2))
        trainer.evaluate(training_ids(2))  # evaluation routes too, but is not training
        counts, layers = trainer.expert_load()
        assert layers.tolist() == list(range(info.num_layers))  # every layer of the fixture is an MoE layer
        assert counts.sum(axis=1).tolist() == [2 * 2 * 8 * info.experts_per_token] * info.num_moe_layers


def test_threads_sharing_a_trainer_take_turns(context):
    steps = []
    with create_model(context) as model, moesdk.Trainer(model) as trainer:

        def run():
            for _ in range(3):
                steps.append(trainer.step(training_ids(2)).step)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(steps) == [1, 2, 3, 4, 5, 6]  # each step saw the one before it completed
