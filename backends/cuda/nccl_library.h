// NCCL, opened with dlopen on first use (libnccl.so.2 from the library path), so that the plugin loads
// and runs every other op on machines without NCCL. nccl.h supplies the types and the signatures only.
#pragma once

#include <nccl.h>

namespace moe_cuda {

struct NcclLibrary {
  decltype(&ncclGetVersion) get_version;
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclCommGetAsyncError) comm_get_async_error;
  decltype(&ncclGetErrorString) get_error_string;
  decltype(&ncclGetLastError) get_last_error;
  decltype(&ncclAllReduce) all_reduce;
  decltype(&ncclAllGather) all_gather;
  decltype(&ncclReduceScatter) reduce_scatter;
  decltype(&ncclSend) send;
  decltype(&ncclRecv) recv;
  decltype(&ncclGroupStart) group_start;
  decltype(&ncclGroupEnd) group_end;
};

// The process's NCCL; throws MOE_ERR_UNSUPPORTED saying why when it cannot be opened.
const NcclLibrary& nccl();

// Throws MOE_ERR_BACKEND naming `what`, NCCL's error and its last message.
void check_nccl(ncclResult_t result, const char* what);

}  // namespace moe_cuda
