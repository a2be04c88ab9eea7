// Index checks of recorded steps. A replayed step runs without the host, so its ops cannot copy their
// indices to the host and check them before the kernels run (index_checks.h). Instead the kernels check
// every index they use: a bad one is skipped (nothing is read or written out of bounds) and described in
// an error record that lives in mapped page-locked host memory. The first bad index wins (the kernels
// claim the record with atomicCAS); the next call that waits for the device (copy_to_host, synchronize)
// reads the record, clears it and fails with MOE_ERR_INVALID_ARGUMENT naming the op, the entry, its value
// and the range it had to lie in.
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

// Which index of which op was bad; the host turns it into the message (device_index_checks.cpp).
enum class IndexCheck : int32_t {
  kNone = 0,
  kEmbeddingIds,
  kRopePositions,
  kKvStoreSlot,
  kKvStorePosition,
  kKvLoadSlot,
  kKvLoadPosition,
  kAttentionSlot,
  kAttentionKvLen,
  kPermuteIds,          // entry (token, choice)
  kExpertMlpOffsets,    // low/high: the bounds the entry broke
  kUnpermuteSource,     // out of range
  kUnpermuteSourceTwice // a flat index that two sorted rows name
};

// The record, in mapped page-locked host memory. The first kernel to find a bad index claims it with
// atomicCAS on `claim` (a flag in device memory: GPU atomics on host memory would need PCIe atomics), then
// fills in the fields and writes `check` last, so a record with check != kNone is complete.
struct IndexError {
  int32_t* claim;  // device memory; 0 until claimed, reset by the host when it reports the record
  int32_t check;   // an IndexCheck
  int32_t unused;
  int64_t row, col;          // the entry: [row] or, when col >= 0, [row, col]
  int64_t value, low, high;  // its value and the inclusive range it had to lie in
};

// The instance's record, made on first use (by record_begin): its device address, for the kernels.
IndexError* device_index_errors(moe_backend& be);

// After the stream was waited for: throws MOE_ERR_INVALID_ARGUMENT describing the bad index that a
// replay met, if any, and clears the record.
void raise_device_index_error(moe_backend& be);

// Frees the record (instance destruction).
void free_index_errors(moe_backend& be);

}  // namespace moe_cuda
