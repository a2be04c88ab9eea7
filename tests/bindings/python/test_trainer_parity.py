"""The Trainer gives the C API's numbers for the same model, data, options and seed (the scenarios of
tests/bindings/reference_training.c, repeated here option for option)."""

import os

import numpy as np

import moesdk
from conftest import create_model, training_ids

BATCH = 2


def as_float32(record):
    return np.array(record, dtype=np.float32)


def last_token_logits(model, ids):
    return model.forward(ids[0], last_only=True)[0]


def test_created_model_has_the_c_apis_weights(context, training_reference):
    with create_model(context) as model:
        info = model.describe()
        assert info.dtype == "f32" and info.vocab_size == 320
        np.testing.assert_array_equal(
            last_token_logits(model, training_ids(BATCH)), as_float32(training_reference["created_logits"][0])
        )


def test_steps_with_every_option_set_match_the_c_api(context, training_reference):
    options = dict(
        lr=5e-3,
        weight_decay=0.01,
        beta1=0.8,
        beta2=0.99,
        eps=1e-6,
        clip_norm=0.5,
        warmup_steps=1,
        total_steps=5,
        schedule="cosine",
        min_lr_ratio=0.1,
        seed=3,
        label_smoothing=0.05,
        aux_loss_coef=0.02,
        z_loss_coef=0.001,
        sequence_balance_coef=0.001,
        gating=moesdk.GATING_GUMBEL,
        gumbel_temperature=2.0,
        gumbel_temperature_final=0.5,
        freeze_layers_below=1,
        freeze_experts=[3],
        freeze_patterns=[r"model\.norm\.weight"],
        capacity_factor=1.0,
    )
    ids = training_ids(BATCH)
    with create_model(context) as model, moesdk.Trainer(model, **options) as trainer:
        for expected in training_reference["full_step"]:
            s = trainer.step(ids)
            assert [s.loss, s.aux_loss, s.grad_norm, s.lr, s.step, s.tokens, s.dropped_fraction] == expected
            assert 0 < s.dropped_fraction < 1  # capacity_factor reached the library
        assert trainer.evaluate(ids).loss == training_reference["full_evaluate"][0][0]


def test_train_over_a_shuffled_dataset_matches_the_c_api(context, training_reference):
    seen = []
    with create_model(context) as model, moesdk.Trainer(
        model, lr=1e-2, grad_accumulation=2, seed=5, ignore_index=16
    ) as trainer:
        last = trainer.train(
            training_ids(6), batch_size=BATCH, until_step=3, shuffle=True,
            progress=lambda s: seen.append([s.step, s.loss, s.lr]),
        )
    assert seen == training_reference["train_progress"]
    assert isinstance(last, moesdk.TrainStats) and last.step == 3 and last.loss == seen[-1][1]


def test_lora_and_merge_match_the_c_api(context, training_reference):
    ids = training_ids(BATCH)
    with create_model(context) as model, moesdk.Trainer(
        model, lr=2e-2, seed=9, lora_rank=4, lora_alpha=8.0, lora_attention=True, lora_experts=True
    ) as trainer:
        for expected in training_reference["lora_step"]:
            s = trainer.step(ids)
            assert [s.loss, s.grad_norm] == expected
        trainer.merge_lora()
        np.testing.assert_array_equal(
            last_token_logits(model, ids), as_float32(training_reference["lora_merged_logits"][0])
        )


def test_task_heads_match_the_c_api(context, training_reference):
    ids = training_ids(BATCH)
    with create_model(context) as model, moesdk.Trainer(
        model, lr=1e-2, seed=4, task="sequence_classification", num_labels=3
    ) as trainer:
        assert trainer.task == moesdk.TASK_SEQUENCE_CLASSIFICATION
        for expected in training_reference["classify_step"]:
            s = trainer.step(ids, np.array([2, 0]))
            assert [s.loss, s.accuracy] == expected
    with create_model(context) as model, moesdk.Trainer(
        model, lr=1e-2, seed=4, task=moesdk.TASK_SPAN_EXTRACTION
    ) as trainer:
        s = trainer.step(ids, np.array([[1, 3], [4, 6]], dtype=np.int32))
        assert [s.loss, s.accuracy] == training_reference["span_step"][0]


def test_created_model_keeps_and_saves_its_tokenizer(context, tmp_path):
    tokenizer_json = os.path.join(os.environ["MOE_TOKENIZER_MODEL"], "tokenizer.json")
    with create_model(context, tokenizer=tokenizer_json) as model:
        ids = model.tokenizer.encode("Mixture of experts")
        model.save(str(tmp_path / "saved"))
    with moesdk.Model(context, str(tmp_path / "saved")) as saved:
        assert saved.tokenizer.encode("Mixture of experts").tolist() == ids.tolist()
