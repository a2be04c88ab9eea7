/* MoE SDK: the definitions moe.h (the public ABI) and moe_plugin.h (the plugin ABI) share.
 * Values are fixed forever: new codes are only ever added. */
#ifndef MOE_COMMON_H
#define MOE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when a struct whose first field is struct_size is large enough to hold `field`. */
#define MOE_STRUCT_HAS(ptr, type, field) \
  ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* Every fallible function returns a moe_status; 0 is success. */
typedef int32_t moe_status;
#define MOE_OK 0
#define MOE_ERR_INVALID_ARGUMENT 1 /* an argument is null, out of range or inconsistent */
#define MOE_ERR_IO 2               /* a file could not be opened, read or written */
#define MOE_ERR_FORMAT 3           /* a file or input is malformed */
#define MOE_ERR_UNSUPPORTED 4      /* valid, but this build, backend or plugin cannot do it */
#define MOE_ERR_OUT_OF_MEMORY 5    /* an allocation failed */
#define MOE_ERR_BACKEND 6          /* a backend operation failed */
#define MOE_ERR_PLUGIN 7           /* no usable plugin, or a plugin was rejected */
#define MOE_ERR_CANCELLED 8        /* a callback asked to stop */
#define MOE_ERR_LIMIT 9            /* a configured limit (sequence length, batch, bytes) was exceeded */
#define MOE_ERR_NOT_FOUND 10       /* a named thing (file, tensor, key, plugin) does not exist */
#define MOE_ERR_INTERNAL 11        /* a bug: please report it with the message */

/* Element types. Values are fixed forever. */
typedef int32_t moe_dtype;
#define MOE_DTYPE_F32 1
#define MOE_DTYPE_BF16 2
#define MOE_DTYPE_F16 3
#define MOE_DTYPE_I32 4
#define MOE_DTYPE_I64 5
#define MOE_DTYPE_I8 6
#define MOE_DTYPE_U8 7
#define MOE_DTYPE_F64 8

#define MOE_LOG_ERROR 0
#define MOE_LOG_WARN 1
#define MOE_LOG_INFO 2
#define MOE_LOG_DEBUG 3

#ifdef __cplusplus
}
#endif

#endif /* MOE_COMMON_H */
