"""MoE SDK for Python: load, run, generate with, train and fine-tune mixture-of-experts models
through libmoe.

    import moesdk
    with moesdk.Context(backend="cpu") as ctx, moesdk.Model(ctx, "path/to/checkpoint") as model:
        logits = model.forward([[1, 2, 3], [4, 5]])          # float32 [5, vocab]
        ids = model.generate([1, 2, 3], max_new_tokens=16)   # int32 new ids
        for token_id, text in model.generate_iter([1, 2, 3], max_new_tokens=16):
            print(token_id, text)

    with moesdk.Model.create(ctx, "config.json", seed=1) as model, \
            moesdk.Trainer(model, lr=1e-3, lora_rank=8) as trainer:
        stats = trainer.step(batch)                          # int32 [batch, seq_len]
        trainer.train(dataset, batch_size=8, until_step=100, progress=lambda s: print(s.step, s.loss))

Failed calls raise a subclass of moesdk.Error carrying the library's message (moesdk.errors).
"""

from ._moesdk import (
    GATING_GUMBEL,
    GATING_TOPK,
    GENERATE_CONTINUE,
    GENERATE_STOP_ALL,
    GENERATE_STOP_ROW,
    HEADER_VERSION,
    LOG_DEBUG,
    LOG_ERROR,
    LOG_INFO,
    LOG_WARN,
    NAN_SKIP_STEP,
    NAN_STOP,
    PLUGIN_KIND_BACKEND,
    PLUGIN_KIND_MODALITY,
    PLUGIN_LOADED,
    PLUGIN_REJECTED,
    PLUGIN_UNUSABLE,
    SCHEDULE_CONSTANT,
    SCHEDULE_COSINE,
    TASK_CAUSAL_LM,
    TASK_SEQUENCE_CLASSIFICATION,
    TASK_SPAN_EXTRACTION,
    Context,
    Model,
    ModelInfo,
    PluginInfo,
    Tokenizer,
    TokenStream,
    Trainer,
    TrainStats,
    status_string,
    version,
)
from .errors import (
    BackendError,
    CancelledError,
    Error,
    FormatError,
    InternalError,
    InvalidArgumentError,
    IoError,
    LimitError,
    NotFoundError,
    OutOfMemoryError,
    PluginError,
    UnsupportedError,
)

__version__ = version()
