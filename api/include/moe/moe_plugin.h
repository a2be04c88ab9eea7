/* MoE SDK plugin ABI.
 *
 * A plugin is a shared library (libmoe_backend_<name>.so or libmoe_modality_<name>.so) that exports
 * one C symbol, MOE_PLUGIN_ENTRY_SYMBOL, of type moe_plugin_entry_fn. The host calls it once with its
 * own host table; the plugin returns a descriptor that lives as long as the library stays loaded.
 *
 * Versioning (the PJRT rule): MOE_PLUGIN_ABI_MAJOR changes only when an existing field or function
 * changes meaning; the host rejects a plugin of another major with a message naming both versions.
 * Minor versions only append fields at the end of size-prefixed structs, so the host reads a field only
 * when the struct's struct_size covers it, and a plugin reads only fields the host's struct_size covers.
 *
 * Everything here is plain C: no C++ types, no exceptions, no struct passed by value across the
 * boundary. A plugin never links libmoe; it builds against this header (and moe_common.h) alone.
 */
#ifndef MOE_PLUGIN_H
#define MOE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "moe/moe_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_PLUGIN_ABI_MAJOR 1
#define MOE_PLUGIN_ABI_MINOR 5 /* 1.1: collectives appended to moe_backend_ops; 1.2: recorded steps; 1.3: argmax_rows;
                                  1.4: route_and_permute; 1.5: route_and_permute takes the layer's norm,
                                  rmsnorm_linear, expert_mlp_unpermute, rope_kv_store */
#define MOE_PLUGIN_ABI_VERSION ((uint32_t)((MOE_PLUGIN_ABI_MAJOR << 16) | MOE_PLUGIN_ABI_MINOR))
#define MOE_PLUGIN_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define MOE_PLUGIN_ABI_MINOR_OF(v) ((uint32_t)(v)&0xffffu)

#define MOE_PLUGIN_ENTRY_SYMBOL "moe_plugin_entry"

/* Put before the definition of moe_plugin_entry so it is exported even when the plugin is built with
 * hidden visibility:  MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(...) { ... } */
#if defined(_WIN32)
#define MOE_PLUGIN_EXPORT __declspec(dllexport)
#else
#define MOE_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* What the host gives every plugin. */
typedef struct moe_host_api {
  uint32_t struct_size;
  uint32_t abi_version; /* MOE_PLUGIN_ABI_VERSION of the host */
  /* A log line attributed to the plugin. */
  void (*log)(int32_t level, const char* plugin_name, const char* message);
  /* Sets the calling thread's error message; the plugin then returns a non-OK status. The host
   * prefixes nothing: say which argument, tensor or file is at fault. */
  void (*set_error)(const char* message);
  /* Memory that the host will free with free_host_memory (output arrays of modality plugins). */
  void* (*alloc_host_memory)(size_t bytes);
  void (*free_host_memory)(void* ptr);
} moe_host_api;

#define MOE_PLUGIN_KIND_BACKEND 1
#define MOE_PLUGIN_KIND_MODALITY 2

typedef struct moe_plugin_descriptor {
  uint32_t struct_size;
  uint32_t abi_version; /* MOE_PLUGIN_ABI_VERSION the plugin was built with */
  int32_t kind;         /* MOE_PLUGIN_KIND_* */
  const char* name;     /* "cpu", "cuda", "text", ... */
  const char* version;  /* the plugin's own version string */
  /* 0 = cannot run on this machine (e.g. no GPU); higher = preferred under backend "auto".
   * NULL means always usable with score 1. */
  int32_t (*score)(void);
  /* moe_backend_ops* for MOE_PLUGIN_KIND_BACKEND, moe_modality_ops* for MOE_PLUGIN_KIND_MODALITY. */
  const void* ops;
} moe_plugin_descriptor;

typedef const moe_plugin_descriptor* (*moe_plugin_entry_fn)(const moe_host_api* host);

/* ------------------------------------------------------------------------------------------------
 * Backends
 *
 * A backend owns device memory and runs operations on tensors that live there. The core holds
 * every tensor as a moe_tensor: a pointer into backend memory plus dtype and shape. Unless an op
 * says otherwise, tensors are dense row-major ("contiguous") and their shapes are checked by the
 * core before the call; a backend still rejects what it cannot do with MOE_ERR_UNSUPPORTED and a
 * message, never by crashing. Ops may run asynchronously on the backend's stream; copies to the host
 * and synchronize() complete them. Every op must be safe to call from several threads at once on
 * one backend instance (distinct output buffers).
 * ------------------------------------------------------------------------------------------------ */

#define MOE_MAX_DIMS 6

typedef struct moe_tensor {
  void* data; /* backend memory; for the CPU backend, host memory */
  moe_dtype dtype;
  int32_t ndim;
  int64_t shape[MOE_MAX_DIMS];
} moe_tensor;

typedef struct moe_backend moe_backend; /* a backend instance, opaque to the host */

typedef struct moe_backend_options {
  uint32_t struct_size;
  int32_t num_threads; /* CPU worker threads; 0 = one per core */
  int32_t device;      /* device ordinal for GPU backends */
} moe_backend_options;

/* Activations of the gated MLP. */
#define MOE_ACT_SILU 1
#define MOE_ACT_GELU_TANH 2

/* Rotary embedding layouts. NEOX rotates pairs (i, i + rot_dim/2) (transformers' rotate_half);
 * INTERLEAVED rotates pairs (2i, 2i+1) (the original DeepSeek / Llama formulation). */
#define MOE_ROPE_NEOX 0
#define MOE_ROPE_INTERLEAVED 1

/* Collectives (the entries at the end of moe_backend_ops, ABI 1.1). A communicator joins backend instances,
 * one per device, in one process or several; its id is made by one member and handed to the others. */
#define MOE_COMM_ID_BYTES 128
typedef struct moe_comm moe_comm; /* a communicator of one backend instance, opaque to the host */

/* A recorded sequence of ops (ABI 1.2), replayed as one launch (a CUDA graph), opaque to the host. */
typedef struct moe_recorded_step moe_recorded_step;

/* Reductions of all_reduce and reduce_scatter. */
#define MOE_REDUCE_SUM 0
#define MOE_REDUCE_MAX 1
#define MOE_REDUCE_MIN 2
#define MOE_REDUCE_AVG 3

typedef struct moe_backend_ops {
  uint32_t struct_size;

  /* ---- instance and memory ---- */
  moe_status (*create)(const moe_backend_options* options, moe_backend** out);
  void (*destroy)(moe_backend* be);
  /* A one-line description of the device and what it supports ("AMD EPYC, 2 threads, avx512_bf16"). */
  const char* (*device_description)(moe_backend* be);
  moe_status (*alloc)(moe_backend* be, size_t bytes, void** out);
  void (*free)(moe_backend* be, void* ptr);
  moe_status (*copy_from_host)(moe_backend* be, void* dst, const void* src, size_t bytes);
  moe_status (*copy_to_host)(moe_backend* be, void* dst, const void* src, size_t bytes);
  moe_status (*copy)(moe_backend* be, void* dst, const void* src, size_t bytes);
  moe_status (*memset_zero)(moe_backend* be, void* dst, size_t bytes);
  moe_status (*synchronize)(moe_backend* be);

  /* ---- dense math ---- */

  /* C[m, n] = alpha * sum_k A'[m, k] * B'[k, n] + beta * C[m, n] over 2-D operands, where A' is A ([m, k]) or,
   * with trans_a, the transpose of A ([k, m]: weight gradients dW = dY^T . X), and B' is B ([k, n]) or, with
   * trans_b, the transpose of B ([n, k], the nn.Linear weight layout).
   * A and B: f32 or bf16 (may differ; a backend computes bf16 x bf16 products where it can and otherwise in
   * f32); C: f32, or bf16 on backends that keep activations in bf16 (others return MOE_ERR_UNSUPPORTED).
   * Row strides lda, ldb, ldc in elements (>= the stored row length), so that row blocks and column slices
   * of larger tensors can be used without copies. */
  moe_status (*gemm)(moe_backend* be, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                     float beta, void* c, moe_dtype c_type, int64_t ldc);

  /* y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight over rows of width = weight.shape[0].
   * x, y: f32 [rows, width] (y may equal x); weight: f32 or bf16 [width]. */
  moe_status (*rmsnorm)(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, float eps, moe_tensor* y);

  /* In place over x: f32 [tokens, heads, head_dim]; rotates dims [rot_offset, rot_offset + rot_dim) of
   * every head by the angle of each token's position: out = x*cos + rotate(x)*sin with cos/sin f32
   * tables [max_positions, rot_dim/2] (row p holds the values for position p; frequency i of pair i).
   * positions: i32 [tokens]; each must be < max_positions. layout: MOE_ROPE_*. */
  moe_status (*rope)(moe_backend* be, moe_tensor* x, const moe_tensor* positions, const moe_tensor* cos_table,
                     const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim, int32_t layout);

  /* y[r, j] = act(x[r, j]) * x[r, j + width] for j < width, where x is f32 [rows, 2*width] (the
   * fused gate|up projection) and y is f32 [rows, width]. activation: MOE_ACT_*. */
  moe_status (*gated_act)(moe_backend* be, const moe_tensor* x, int32_t activation, moe_tensor* y);

  /* y = a + b elementwise, f32, same number of elements (y may alias a or b). */
  moe_status (*add)(moe_backend* be, const moe_tensor* a, const moe_tensor* b, moe_tensor* y);

  /* out[t, :] = table[ids[t], :] converted to f32. ids: i32 [tokens]; table: f32 or bf16 [vocab, dim];
   * out: f32 [tokens, dim]. An id outside [0, vocab) is MOE_ERR_INVALID_ARGUMENT naming the id. */
  moe_status (*embedding)(moe_backend* be, const moe_tensor* ids, const moe_tensor* table, moe_tensor* out);

  /* Strided copy of a 2-D block of f32 elements: dst[r * dst_stride + c] = src[r * src_stride + c]
   * for r < rows, c < cols. Used to split and join head slices without a host round trip. */
  moe_status (*copy_2d)(moe_backend* be, float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
                        int64_t rows, int64_t cols);

  /* ---- routing and experts ---- */

  /* Mixtral-style router: p = softmax(logits[t, :]); choose the top_k largest p (ties: lower expert
   * id first); weights = chosen p, divided by their sum when normalize != 0.
   * logits: f32 [tokens, experts]; ids out: i32 [tokens, top_k]; weights out: f32 [tokens, top_k]. */
  moe_status (*route_softmax_topk)(moe_backend* be, const moe_tensor* logits, int32_t top_k, int32_t normalize,
                                   moe_tensor* ids, moe_tensor* weights);

  /* DeepSeek-V3 router: s = sigmoid(logits); choice = s + bias (bias f32 [experts], may be NULL).
   * Experts form n_group equal groups; a group's score is the sum of its two largest choice values
   * (its largest when a group has one expert); keep the topk_group best groups, then choose the top_k
   * experts by choice among them. weights = s of the chosen experts (not choice), divided by
   * (their sum + 1e-20) when normalize != 0, then multiplied by scaling. */
  moe_status (*route_sigmoid_group_topk)(moe_backend* be, const moe_tensor* logits, const moe_tensor* bias,
                                         int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                         float scaling, moe_tensor* ids, moe_tensor* weights);

  /* Groups token copies by expert. ids: i32 [tokens, top_k] from a router; x: f32 [tokens, dim].
   * Writes x_sorted f32 [tokens*top_k, dim] (rows of expert 0 first, then expert 1, ...; within an
   * expert in token order), offsets i64 [experts + 1] (rows of expert e are offsets[e]..offsets[e+1]),
   * and source i32 [tokens*top_k] (for each sorted row, the flat index t*top_k + j it came from). */
  moe_status (*moe_permute)(moe_backend* be, const moe_tensor* x, const moe_tensor* ids, int32_t num_experts,
                            moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source);

  /* The routed experts' gated MLP over rows grouped by moe_permute:
   * for each expert e and row r in [offsets[e], offsets[e+1]):
   *   h = act(x[r] . gate_up[e][0:F]^T) * (x[r] . gate_up[e][F:2F]^T);  y[r] = h . down[e]^T
   * x, y: f32 [rows, dim]; gate_up: f32 or bf16 [experts, 2F, dim]; down: same dtype [experts, dim, F];
   * offsets: i64 [experts + 1] as written by moe_permute. */
  moe_status (*expert_mlp)(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets, const moe_tensor* gate_up,
                           const moe_tensor* down, int32_t activation, moe_tensor* y);

  /* out[t, :] (+)= sum_j weights[t, j] * y_sorted[row of (t, j), :], with rows found through
   * source (from moe_permute). accumulate != 0 adds to out instead of overwriting it.
   * y_sorted f32 [tokens*top_k, dim]; source i32 [tokens*top_k]; weights f32 [tokens, top_k];
   * out f32 [tokens, dim]. */
  moe_status (*moe_unpermute)(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                              const moe_tensor* weights, int32_t accumulate, moe_tensor* out);

  /* ---- attention ---- */

  /* Writes new keys and values into a KV cache. k: f32 [tokens, kv_heads, dk]; v: f32 [tokens, kv_heads, dv];
   * k_cache: f32 [slots, kv_heads, capacity, dk]; v_cache: f32 [slots, kv_heads, capacity, dv];
   * slot, position: i32 [tokens]: token t goes to k_cache[slot[t], :, position[t], :]. */
  moe_status (*kv_store)(moe_backend* be, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                         const moe_tensor* position, moe_tensor* k_cache, moe_tensor* v_cache);

  /* Scaled dot-product attention of packed query tokens against a KV cache.
   * q: f32 [tokens, heads, dk]; out: f32 [tokens, heads, dv]; caches as in kv_store, with
   * heads a multiple of kv_heads (grouped-query attention: head h reads kv head h / (heads/kv_heads)).
   * Token t attends to keys 0 .. kv_len[t]-1 of cache slot slot[t] (kv_len = position + 1 gives causal
   * attention). scores = q.k * scale, softmax in f32. slot, kv_len: i32 [tokens]. */
  moe_status (*attention)(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                          const moe_tensor* slot, const moe_tensor* kv_len, float scale, moe_tensor* out);

  /* ---- training: backward passes, losses, optimizer ----
   * Gradients are f32. "accumulates" means the op adds into the output (the core zeroes it first);
   * an output documented as nullable is skipped when NULL (e.g. the gradient of a frozen weight). */

  /* dx and dweight of rmsnorm for the forward input x [rows, width] and upstream dy [rows, width]:
   * dx[r] = rstd*w*dy - x * rstd^3 * mean(x * w * dy) (rstd = 1/sqrt(mean(x^2)+eps));
   * dweight (nullable, f32 [width]) accumulates sum_r dy[r] * x[r] * rstd[r]. dx may alias dy. */
  moe_status (*rmsnorm_backward)(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, const moe_tensor* dy,
                                 float eps, moe_tensor* dx, moe_tensor* dweight);

  /* dx [rows, 2*width] of gated_act for the forward input x [rows, 2*width] and dy [rows, width]. */
  moe_status (*gated_act_backward)(moe_backend* be, const moe_tensor* x, const moe_tensor* dy, int32_t activation,
                                   moe_tensor* dx);

  /* dtable[ids[t], :] accumulates dout[t, :]. ids i32 [tokens]; dout f32 [tokens, dim]; dtable f32 [vocab, dim]. */
  moe_status (*embedding_backward)(moe_backend* be, const moe_tensor* ids, const moe_tensor* dout, moe_tensor* dtable);

  /* The inverse of kv_store: k[t] = k_cache[slot[t], :, position[t], :] and likewise v (used to read the
   * per-token key and value gradients out of cache-shaped gradients). */
  moe_status (*kv_load)(moe_backend* be, const moe_tensor* k_cache, const moe_tensor* v_cache, const moe_tensor* slot,
                        const moe_tensor* position, moe_tensor* k, moe_tensor* v);

  /* Gradients of attention (same arguments as attention, plus its output `out` and the upstream dout
   * [tokens, heads, dv]): dq [tokens, heads, dk] is written; dk_cache and dv_cache (cache-shaped) accumulate.
   * Every (slot, position) a query attends to must have been written by kv_store in this step or before. */
  moe_status (*attention_backward)(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache,
                                   const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len,
                                   float scale, const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq,
                                   moe_tensor* dk_cache, moe_tensor* dv_cache);

  /* dlogits [tokens, experts] (written) of route_softmax_topk's weights for upstream dweights [tokens, top_k],
   * given the forward logits and chosen ids. */
  moe_status (*route_softmax_topk_backward)(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                            int32_t normalize, const moe_tensor* dweights, moe_tensor* dlogits);
  /* The same for route_sigmoid_group_topk (the choice is not differentiated; the bias gets no gradient). */
  moe_status (*route_sigmoid_topk_backward)(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                            int32_t normalize, float scaling, const moe_tensor* dweights,
                                            moe_tensor* dlogits);

  /* Backward of moe_unpermute (accumulate or not): dy_sorted[row of (t, j)] = weights[t, j] * dout[t] (written)
   * and dweights[t, j] = y_sorted[row of (t, j)] . dout[t] (written; nullable). The backward of moe_permute is
   * moe_unpermute of the sorted gradient with unit weights. */
  moe_status (*moe_unpermute_backward)(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                                       const moe_tensor* weights, const moe_tensor* dout, moe_tensor* dy_sorted,
                                       moe_tensor* dweights);

  /* Backward of expert_mlp for upstream dy [rows, dim]: dx (nullable, written) [rows, dim]; dgate_up (nullable,
   * f32 [experts, 2F, dim]) and ddown (nullable, f32 [experts, dim, F]) accumulate. The hidden activations are
   * recomputed from x. */
  moe_status (*expert_mlp_backward)(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets,
                                    const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                    const moe_tensor* dy, moe_tensor* dx, moe_tensor* dgate_up, moe_tensor* ddown);

  /* Cross-entropy per row: logits f32 [rows, vocab]; labels i32 [rows] (ignore_index: the row counts for
   * nothing); loss f32 [rows] = (1-s) * (-log p[label]) + s * mean_v(-log p[v]) for label smoothing s, 0 for
   * ignored rows. dlogits (nullable, f32 [rows, vocab], may alias logits) = grad_scale * d loss[r] / d logits[r]
   * (0 for ignored rows). A label outside [0, vocab) that is not ignore_index is MOE_ERR_INVALID_ARGUMENT. */
  moe_status (*cross_entropy)(moe_backend* be, const moe_tensor* logits, const moe_tensor* labels,
                              int32_t ignore_index, float label_smoothing, float grad_scale, moe_tensor* loss,
                              moe_tensor* dlogits);

  /* One AdamW step (torch.optim.AdamW): p *= 1 - lr*weight_decay; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
   * p -= lr/(1-b1^step) * m / (sqrt(v)/sqrt(1-b2^step) + eps). param, grad, m, v: f32, same element count;
   * step >= 1. */
  moe_status (*adamw_update)(moe_backend* be, moe_tensor* param, const moe_tensor* grad, moe_tensor* m,
                             moe_tensor* v, float lr, float beta1, float beta2, float eps, float weight_decay,
                             int64_t step);

  /* out f32 [1] = sum of x^2 over all elements of f32 x (accumulated in double). */
  moe_status (*sum_squares)(moe_backend* be, const moe_tensor* x, moe_tensor* out);
  /* x *= alpha in place, f32. */
  moe_status (*scale)(moe_backend* be, moe_tensor* x, float alpha);
  /* logits[t, e] += scale * g(seed, offset + t*experts + e), f32 [tokens, experts], where g is standard Gumbel
   * noise -log(-log(u)): with i = offset + t*experts + e, Philox4x32-10 with counter {i mod 2^32, i >> 32, 0, 0}
   * and key {seed mod 2^32, seed >> 32} gives x0 (its first output word) and u = (x0 + 0.5) * 2^-32; so every
   * backend draws the same noise for the same seed and offset. */
  moe_status (*add_gumbel_noise)(moe_backend* be, moe_tensor* logits, uint64_t seed, uint64_t offset, float scale);

  /* ---- appended in ABI 1.1: collectives (NULL where a backend has none; the core then reports
   * MOE_ERR_UNSUPPORTED) ----
   * A communicator joins `size` instances, one per device, in this process or in others (ranks 0 .. size-1).
   * One rank makes an id with comm_unique_id and the application hands its MOE_COMM_ID_BYTES bytes to the
   * others (a file, a socket, MPI); every rank then calls comm_init with it. comm_init returns once all ranks
   * have joined, so ranks in one process call it from separate threads. Collectives are enqueued on the
   * instance's stream like any op; every rank must call the same collectives in the same order with the same
   * dtype and element counts. Element types: f32, bf16, f16, i32, i64 (MOE_REDUCE_AVG: floating types only). */
  moe_status (*comm_unique_id)(moe_backend* be, uint8_t id[MOE_COMM_ID_BYTES]);
  moe_status (*comm_init)(moe_backend* be, const uint8_t id[MOE_COMM_ID_BYTES], int32_t size, int32_t rank,
                          moe_comm** out);
  /* Waits for the communicator's pending work, then frees it. */
  void (*comm_destroy)(moe_backend* be, moe_comm* comm);
  /* y = x reduced elementwise over the ranks (op: MOE_REDUCE_*); x and y have one dtype and element count and
   * y may be x. */
  moe_status (*all_reduce)(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y, int32_t op);
  /* y = every rank's x, concatenated in rank order (y has size times x's elements). */
  moe_status (*all_gather)(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y);
  /* x reduced elementwise over the ranks, of which rank r keeps block r (x has size times y's elements). */
  moe_status (*reduce_scatter)(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y, int32_t op);
  /* Personalised exchange (expert-parallel dispatch and combine): x holds, in rank order, send_counts[r]
   * elements for each rank r; y receives, in rank order, recv_counts[r] elements from each rank r.
   * send_counts and recv_counts are host arrays of `size` entries, and recv_counts[r] here must equal
   * send_counts[this rank] on rank r. x and y have one dtype and at least the counts' sums of elements. */
  moe_status (*all_to_all)(moe_backend* be, moe_comm* comm, const moe_tensor* x, const int64_t* send_counts,
                           moe_tensor* y, const int64_t* recv_counts);

  /* ---- appended in ABI 1.2: recorded steps (NULL where a backend cannot record; the core then runs every
   * step op by op) ----
   * Small steps (a decode step) cost more in launches and host work than in device work. Between
   * record_begin and record_end, the ops the calling thread makes on this instance are recorded, not run,
   * with their arguments as given (pointers, sizes, scalars); replay_step runs them all again as one launch,
   * reading whatever the recorded pointers hold at that time. So the host changes a step's inputs by
   * copying new values into the same buffers before each replay.
   * While recording:
   *  - ops never wait for the device. An op whose inputs include indices (ids, positions, slots, kv_len,
   *    expert ids, offsets, sources) checks them on the device when the step is replayed: a replay that
   *    meets a bad index skips the entry (nothing is read or written out of bounds) and the next call on
   *    this instance that waits for the device (copy_to_host, synchronize) fails with
   *    MOE_ERR_INVALID_ARGUMENT naming the op, the entry and its value. Outside recording, ops keep
   *    checking indices before they return, as documented above.
   *    A replay's results after a bad index are undefined, but nothing is read or written out of bounds.
   *  - alloc and free are not recorded: alloc returns ordinary memory that stays valid after recording (a
   *    backend may put a free off until record_end). The host keeps every block the step uses (made before
   *    or while recording) allocated, and out of other use, until the step is destroyed.
   *  - copy_from_host, copy_to_host and synchronize fail with MOE_ERR_INVALID_ARGUMENT (nothing crosses to
   *    the host while recording); copy, memset_zero and every math op are recorded. Collectives are not
   *    recordable (MOE_ERR_UNSUPPORTED).
   *  - other threads' calls on the instance are not recorded (a backend may make them wait until recording
   *    ends).
   * A failure while recording is returned by the failing op as usual; record_end then discards the
   * recording and returns MOE_ERR_INVALID_ARGUMENT naming the first failure. A backend whose ops run on
   * the calling thread (the CPU backend) may instead check an op's arguments when it is replayed: a bad
   * argument then fails the next waiting call, as a bad index does. */
  moe_status (*record_begin)(moe_backend* be);
  moe_status (*record_end)(moe_backend* be, moe_recorded_step** out);
  /* Enqueues the recorded ops on the instance's stream, like any op (returns without waiting). */
  moe_status (*replay_step)(moe_backend* be, moe_recorded_step* step);
  /* Waits for the step's pending replays, then frees it. */
  void (*destroy_step)(moe_backend* be, moe_recorded_step* step);

  /* ---- appended in ABI 1.3 (NULL where a backend has none; the core then takes the argmax on the host) ----
   * Greedy decoding needs only the index of each row's largest logit, not the row (128 KB a row for a
   * 32000-token vocabulary). x: f32 [rows, n] with 1 <= n <= 2^31 - 1; out: i32 [rows] (another dtype is
   * MOE_ERR_UNSUPPORTED, another shape MOE_ERR_INVALID_ARGUMENT, naming the tensor). out[r] = the index of
   * the largest value of row r, the first such index on ties (as torch.argmax); NaN values are never chosen
   * (unlike torch.argmax), and a row of only NaN gives 0. -inf is an ordinary value (a row of -inf and NaN
   * gives its first -inf). A math op: recorded like the others while recording. */
  moe_status (*argmax_rows)(moe_backend* be, const moe_tensor* x, moe_tensor* out);

  /* ---- appended in ABI 1.4, arguments as of ABI 1.5 (NULL where a backend has none; the core then calls the ops
   * below in turn; the core calls the entry of plugins built for ABI 1.5 or later only, as 1.4 gave it other
   * arguments) ----
   * A MoE layer's input norm, router and dispatch in one op, so that a decode step can run them as one kernel:
   *   h = rmsnorm(x, norm_weight, eps)  where norm_weight is not NULL (x f32 [tokens, dim], norm_weight f32 or
   *                                bf16 [dim], h f32 [tokens, dim], written); where it is NULL, h is x itself
   *                                (the h argument and eps are then ignored, and h may be NULL);
   *   logits = gemm(h, router^T)   router f32 or bf16 [experts, dim]; logits f32 [tokens, experts], computed
   *                                as gemm computes it (alpha 1, beta 0);
   *   ids, weights = route_sigmoid_group_topk(logits, bias, n_group, topk_group, top_k, normalize, scaling)
   *                                where sigmoid != 0, else route_softmax_topk(logits, top_k, normalize) (bias
   *                                must then be NULL; n_group, topk_group and scaling are ignored);
   *   x_sorted, offsets, source = moe_permute(h, ids, experts).
   * Shapes, dtypes and errors are those of the ops (an error names the op's tensor as they do). The results
   * are the ones those ops give called one after the other, bit for bit. A math op: recorded like the others
   * while recording. */
  moe_status (*route_and_permute)(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                                  moe_tensor* h, const moe_tensor* router, int32_t sigmoid, const moe_tensor* bias,
                                  int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                  float scaling, moe_tensor* logits, moe_tensor* ids, moe_tensor* weights,
                                  moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source);

  /* ---- appended in ABI 1.5 (NULL where a backend has none; the core then calls rmsnorm and gemm) ----
   * A norm and the one product that reads its output, as one op, so that a decode step can run them as one
   * kernel (the norm ahead of a layer's stacked q/k/v product, the final norm ahead of the LM head):
   *   h = rmsnorm(x, norm_weight, eps)   x f32 [rows, dim], norm_weight f32 or bf16 [dim], h f32 [rows, dim];
   *   y = gemm(h, w^T)                   w f32 or bf16 [n, dim], y f32 [rows, n] (alpha 1, beta 0).
   * Both h and y are written (h is where a backend that runs the two ops keeps the norm's output; h and y
   * must not overlap x or each other). Shapes, dtypes and errors are those of the two ops; the results are
   * theirs bit for bit. A math op: recorded like the others while recording. */
  moe_status (*rmsnorm_linear)(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                               const moe_tensor* w, moe_tensor* h, moe_tensor* y);

  /* ---- appended in ABI 1.5 (NULL where a backend has none; the core then calls the two ops) ----
   * The routed experts and the weighted combination of their outputs as one op, so that a decode step can
   * run the experts' down product and the combination as one kernel:
   *   y_sorted = expert_mlp(x_sorted, offsets, gate_up, down, activation)        (written)
   *   out (+)= moe_unpermute(y_sorted, source, weights)   (accumulate != 0 adds to out)
   * Shapes, dtypes and errors are those of the two ops (y_sorted must not overlap out); the results are
   * theirs bit for bit. A math op: recorded like the others while recording. */
  moe_status (*expert_mlp_unpermute)(moe_backend* be, const moe_tensor* x_sorted, const moe_tensor* offsets,
                                     const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                     const moe_tensor* source, const moe_tensor* weights, int32_t accumulate,
                                     moe_tensor* y_sorted, moe_tensor* out);

  /* ---- appended in ABI 1.5 (NULL where a backend has none; the core then calls rope and kv_store) ----
   * A layer's new queries and keys rotated and its keys and values stored, as one op, so that a decode step
   * can run them as one kernel:
   *   rope(q, positions, cos_table, sin_table, rot_offset, rot_dim, layout); rope(k, ...)   (in place)
   *   kv_store(k, v, slot, positions, k_cache, v_cache)
   * q f32 [tokens, heads, dk], k f32 [tokens, kv_heads, dk], v f32 [tokens, kv_heads, dv], not overlapping;
   * the other arguments as those ops take them (positions serve both). Errors are those of the ops (q and k
   * named as such); the results are theirs bit for bit. A math op: recorded like the others while
   * recording. */
  moe_status (*rope_kv_store)(moe_backend* be, moe_tensor* q, moe_tensor* k, const moe_tensor* v,
                              const moe_tensor* positions, const moe_tensor* cos_table, const moe_tensor* sin_table,
                              int32_t rot_offset, int32_t rot_dim, int32_t layout, const moe_tensor* slot,
                              moe_tensor* k_cache, moe_tensor* v_cache);
} moe_backend_ops;

/* ------------------------------------------------------------------------------------------------
 * Modality plugins
 *
 * A modality plugin turns raw input into what a model's input layer consumes. The text modality
 * provides a tokenizer; other modalities (image, audio, point clouds) will append their own entries.
 * Arrays a plugin returns are allocated with host->alloc_host_memory and freed by the host.
 * ------------------------------------------------------------------------------------------------ */

typedef struct moe_plugin_tokenizer moe_plugin_tokenizer; /* a tokenizer instance, opaque to the host */

/* One encoded text: ids and, for each id, the byte range [begin, end) of the input it came from
 * (begin == end for ids inserted by post-processing such as BOS). */
typedef struct moe_encoding {
  int32_t* ids;
  int64_t* offsets; /* 2 * count values: begin0, end0, begin1, end1, ... (may be NULL if not asked for) */
  int64_t count;
} moe_encoding;

typedef struct moe_modality_ops {
  uint32_t struct_size;
  const char* modality; /* "text", "image", "audio", "pointcloud", ... */

  /* ---- text ---- */
  /* Loads a Hugging Face tokenizer.json; config_path (may be NULL) is a tokenizer_config.json for
   * add_bos_token / add_eos_token. Errors name the file and the key at fault. */
  moe_status (*tokenizer_load)(const char* tokenizer_json_path, const char* tokenizer_config_path,
                               moe_plugin_tokenizer** out);
  void (*tokenizer_free)(moe_plugin_tokenizer* tok);
  int64_t (*tokenizer_vocab_size)(const moe_plugin_tokenizer* tok);
  /* Encodes UTF-8 text. add_special != 0 applies the post-processor (BOS/EOS templates).
   * want_offsets != 0 fills out->offsets. out->ids/offsets are allocated with host->alloc_host_memory. */
  moe_status (*encode)(const moe_plugin_tokenizer* tok, const char* text, size_t text_len, int32_t add_special,
                       int32_t want_offsets, moe_encoding* out);
  /* Decodes ids to UTF-8 into a host-allocated, NUL-terminated string; skip_special != 0 drops
   * special tokens. */
  moe_status (*decode)(const moe_plugin_tokenizer* tok, const int32_t* ids, int64_t count, int32_t skip_special,
                       char** out_text, size_t* out_len);
  /* Looks up a token's id by its text (e.g. "<｜end▁of▁sentence｜>"); MOE_ERR_NOT_FOUND if absent. */
  moe_status (*token_to_id)(const moe_plugin_tokenizer* tok, const char* token, int32_t* out_id);

  /* Streaming decode for generation: feed ids one at a time and receive only complete UTF-8 text. */
  moe_status (*stream_create)(const moe_plugin_tokenizer* tok, int32_t skip_special, void** out_stream);
  /* Appends one id; *out_text (host-allocated, may be empty) holds the text that became complete. */
  moe_status (*stream_push)(void* stream, int32_t id, char** out_text, size_t* out_len);
  /* Returns whatever is still pending (incomplete UTF-8 replaced by U+FFFD) and frees the stream. */
  moe_status (*stream_finish)(void* stream, char** out_text, size_t* out_len);

  /* ---- appended (text); check struct_size before use ---- */
  /* The id of a role's special token: role "bos", "eos" or "pad" (tokenizer_config.json's bos_token,
   * eos_token, pad_token) or "unk" (its unk_token, else the model's); MOE_ERR_NOT_FOUND if none. */
  moe_status (*special_token_id)(const moe_plugin_tokenizer* tok, const char* role, int32_t* out_id);
} moe_modality_ops;

#ifdef __cplusplus
}
#endif

#endif /* MOE_PLUGIN_H */
