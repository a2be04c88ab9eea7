#include "device_index_checks.h"

#include <cstring>
#include <string>

#include "backend_instance.h"

namespace moe_cuda {
namespace {

struct CheckName {
  const char* op;
  const char* entry;
};

CheckName name_of(IndexCheck check) {
  switch (check) {
    case IndexCheck::kEmbeddingIds: return {"embedding", "ids"};
    case IndexCheck::kRopePositions: return {"rope", "positions"};
    case IndexCheck::kKvStoreSlot: return {"kv_store", "slot"};
    case IndexCheck::kKvStorePosition: return {"kv_store", "position"};
    case IndexCheck::kKvLoadSlot: return {"kv_load", "slot"};
    case IndexCheck::kKvLoadPosition: return {"kv_load", "position"};
    case IndexCheck::kAttentionSlot: return {"attention", "slot"};
    case IndexCheck::kAttentionKvLen: return {"attention", "kv_len"};
    case IndexCheck::kPermuteIds: return {"moe_permute", "ids"};
    case IndexCheck::kExpertMlpOffsets: return {"expert_mlp", "offsets"};
    case IndexCheck::kUnpermuteSource:
    case IndexCheck::kUnpermuteSourceTwice: return {"moe_unpermute", "source"};
    default: return {"an op", "an index"};
  }
}

}  // namespace

IndexError* device_index_errors(moe_backend& be) {
  IndexError*& record = be.recording.index_errors;
  if (!record) {
    void* claim = nullptr;
    check_cuda(cudaMalloc(&claim, sizeof(int32_t)), "allocating the claim flag of device index checks");
    const cudaError_t cleared = cudaMemset(claim, 0, sizeof(int32_t));
    void* p = nullptr;
    const cudaError_t made =
        cleared == cudaSuccess ? cudaHostAlloc(&p, sizeof(IndexError), cudaHostAllocMapped) : cleared;
    if (made != cudaSuccess) {
      cudaFree(claim);
      check_cuda(made, "allocating the page-locked record of device index checks");
    }
    std::memset(p, 0, sizeof(IndexError));
    record = static_cast<IndexError*>(p);
    record->claim = static_cast<int32_t*>(claim);
  }
  void* device = nullptr;
  check_cuda(cudaHostGetDevicePointer(&device, record, 0), "cudaHostGetDevicePointer (device index checks)");
  return static_cast<IndexError*>(device);
}

void raise_device_index_error(moe_backend& be) {
  IndexError* record = be.recording.index_errors;
  if (!record) return;
  volatile IndexError* v = record;
  const auto check = static_cast<IndexCheck>(v->check);
  if (check == IndexCheck::kNone) return;
  const int64_t row = v->row, col = v->col, value = v->value, low = v->low, high = v->high;
  int32_t* claim = record->claim;
  std::memset(record, 0, sizeof(IndexError));
  record->claim = claim;
  // In stream order: the kernels of later replays see the flag cleared.
  check_cuda(cudaMemsetAsync(claim, 0, sizeof(int32_t), be.stream), "clearing the claim flag of device index checks");
  const CheckName n = name_of(check);
  const std::string entry = std::string(n.entry) + "[" + std::to_string(row) +
                            (col >= 0 ? ", " + std::to_string(col) : std::string()) + "] = " + std::to_string(value);
  std::string what;
  if (check == IndexCheck::kUnpermuteSourceTwice)
    what = entry + " names a flat index that another sorted row names too (source must be a permutation of [0, " +
           std::to_string(high + 1) + "))";
  else if (check == IndexCheck::kExpertMlpOffsets)
    what = entry + " breaks 0 <= offsets[0] <= ... <= offsets[experts] <= rows: it must lie in [" +
           std::to_string(low) + ", " + std::to_string(high) + "]";
  else
    what = entry + " is outside [" + std::to_string(low) + ", " + std::to_string(high) + "]";
  invalid(std::string(n.op) + ": " + what +
          " (found on the device while replaying a recorded step; the entry was skipped)");
}

void free_index_errors(moe_backend& be) {
  if (be.recording.index_errors) {
    cudaFree(be.recording.index_errors->claim);
    cudaFreeHost(be.recording.index_errors);
  }
  be.recording.index_errors = nullptr;
}

}  // namespace moe_cuda
