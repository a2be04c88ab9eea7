"""MoE SDK for Python: load, run and generate with mixture-of-experts models through libmoe.

    import moesdk
    with moesdk.Context(backend="cpu") as ctx, moesdk.Model(ctx, "path/to/checkpoint") as model:
        logits = model.forward([[1, 2, 3], [4, 5]])          # float32 [5, vocab]
        ids = model.generate([1, 2, 3], max_new_tokens=16)   # int32 new ids
        for token_id, text in model.generate_iter([1, 2, 3], max_new_tokens=16):
            print(token_id, text)

Failed calls raise a subclass of moesdk.Error carrying the library's message (moesdk.errors).
"""

from ._moesdk import (
    HEADER_VERSION,
    LOG_DEBUG,
    LOG_ERROR,
    LOG_INFO,
    LOG_WARN,
    PLUGIN_KIND_BACKEND,
    PLUGIN_KIND_MODALITY,
    PLUGIN_LOADED,
    PLUGIN_REJECTED,
    PLUGIN_UNUSABLE,
    Context,
    Model,
    ModelInfo,
    PluginInfo,
    Tokenizer,
    TokenStream,
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
