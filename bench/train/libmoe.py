"""The few libmoe C functions the training benchmarks call from Python, through ctypes (the moesdk
binding has no model creation): create a seeded model from a config.json and save it (the initial
weights both trainers start from), and tokenise text with a tokenizer.json."""
import ctypes
import os

MOE_DTYPE_F32 = 1


class ModelCreateOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("dtype", ctypes.c_int32), ("seed", ctypes.c_uint64),
                ("tokenizer_json", ctypes.c_char_p)]


class Lib:
    def __init__(self, build_dir):
        path = os.path.join(build_dir, "lib", "libmoe.so")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: build {build_dir} first")
        self.lib = lib = ctypes.CDLL(path)
        lib.moe_last_error_message.restype = ctypes.c_char_p
        lib.moe_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int32,
                                     ctypes.POINTER(ctypes.c_int32), ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)]
        self.ctx = ctypes.c_void_p()
        self._check(lib.moe_context_create(None, ctypes.byref(self.ctx)), "moe_context_create")

    def _check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.moe_last_error_message().decode(errors='replace')}")

    def create_and_save_model(self, config_json, seed, tokenizer_json, out_dir):
        """moe_model_create(config, seed) then moe_model_save(out_dir): what `moe train --config` starts from."""
        o = ModelCreateOptions()
        self.lib.moe_model_create_options_init_sized(ctypes.byref(o), ctypes.sizeof(o))
        o.dtype, o.seed, o.tokenizer_json = MOE_DTYPE_F32, seed, tokenizer_json.encode()
        model = ctypes.c_void_p()
        self._check(self.lib.moe_model_create(self.ctx, config_json.encode(), ctypes.byref(o), ctypes.byref(model)),
                    "moe_model_create")
        try:
            self._check(self.lib.moe_model_save(model, out_dir.encode()), "moe_model_save")
        finally:
            self.lib.moe_model_free(model)

    def tokenizer(self, tokenizer_json):
        tok = ctypes.c_void_p()
        self._check(self.lib.moe_tokenizer_load(self.ctx, tokenizer_json.encode(), None, ctypes.byref(tok)),
                    "moe_tokenizer_load")
        return Tokenizer(self, tok)


class Tokenizer:
    def __init__(self, lib, handle):
        self.lib, self.handle = lib, handle

    def encode(self, text):
        data = text.encode()
        count = ctypes.c_int64()
        self.lib._check(self.lib.lib.moe_tokenize(self.handle, data, len(data), 0, None, 0, ctypes.byref(count)),
                        "moe_tokenize")
        ids = (ctypes.c_int32 * max(1, count.value))()
        self.lib._check(self.lib.lib.moe_tokenize(self.handle, data, len(data), 0, ids, count.value,
                                                  ctypes.byref(count)), "moe_tokenize")
        return list(ids[:count.value])
