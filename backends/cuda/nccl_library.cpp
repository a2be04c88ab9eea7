#include "nccl_library.h"

#include <dlfcn.h>

#include <string>

#include "errors.h"

namespace moe_cuda {
namespace {

struct Opened {
  NcclLibrary library{};
  std::string problem;  // why NCCL cannot be used ("" when it can)
};

template <typename Fn>
void resolve(void* handle, const char* name, Fn& fn, std::string& problem) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
  if (!fn && problem.empty()) problem = std::string("libnccl.so.2 has no symbol ") + name;
}

Opened open_nccl() {
  Opened o;
  // Kept open for the life of the process, like the plugin itself.
  void* handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    o.problem = std::string("NCCL (libnccl.so.2) could not be opened: ") + (why ? why : "unknown reason");
    return o;
  }
  NcclLibrary& l = o.library;
  resolve(handle, "ncclGetVersion", l.get_version, o.problem);
  resolve(handle, "ncclGetUniqueId", l.get_unique_id, o.problem);
  resolve(handle, "ncclCommInitRank", l.comm_init_rank, o.problem);
  resolve(handle, "ncclCommDestroy", l.comm_destroy, o.problem);
  resolve(handle, "ncclCommGetAsyncError", l.comm_get_async_error, o.problem);
  resolve(handle, "ncclGetErrorString", l.get_error_string, o.problem);
  resolve(handle, "ncclGetLastError", l.get_last_error, o.problem);
  resolve(handle, "ncclAllReduce", l.all_reduce, o.problem);
  resolve(handle, "ncclAllGather", l.all_gather, o.problem);
  resolve(handle, "ncclReduceScatter", l.reduce_scatter, o.problem);
  resolve(handle, "ncclSend", l.send, o.problem);
  resolve(handle, "ncclRecv", l.recv, o.problem);
  resolve(handle, "ncclGroupStart", l.group_start, o.problem);
  resolve(handle, "ncclGroupEnd", l.group_end, o.problem);
  int version = 0;
  if (o.problem.empty() && l.get_version(&version) == ncclSuccess && version < 21000)
    o.problem = "NCCL " + std::to_string(version) + " is too old: the collectives need NCCL 2.10 or later";
  return o;
}

}  // namespace

const NcclLibrary& nccl() {
  static const Opened opened = open_nccl();
  if (!opened.problem.empty()) fail(MOE_ERR_UNSUPPORTED, opened.problem);
  return opened.library;
}

void check_nccl(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return;
  const NcclLibrary& l = nccl();
  const char* last = l.get_last_error(nullptr);
  fail(MOE_ERR_BACKEND, std::string(what) + " failed: " + l.get_error_string(result) +
                            (last && *last ? std::string(" (") + last + ")" : std::string()));
}

}  // namespace moe_cuda
