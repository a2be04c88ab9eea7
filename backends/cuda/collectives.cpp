// Collectives over communicators of backend instances, through NCCL on each instance's stream.
#include <cstring>
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "nccl_library.h"
#include "tensor_checks.h"

struct moe_comm {
  ncclComm_t comm = nullptr;
  int32_t size = 0, rank = 0;
  int device = 0;  // the instance's device it was made on
};

namespace moe_cuda {
namespace {

static_assert(sizeof(ncclUniqueId) == MOE_COMM_ID_BYTES, "NCCL's unique id no longer fits MOE_COMM_ID_BYTES");

ncclDataType_t nccl_type(moe_dtype t, const char* name) {
  switch (t) {
    case MOE_DTYPE_F32: return ncclFloat32;
    case MOE_DTYPE_BF16: return ncclBfloat16;
    case MOE_DTYPE_F16: return ncclFloat16;
    case MOE_DTYPE_I32: return ncclInt32;
    case MOE_DTYPE_I64: return ncclInt64;
    default:
      fail(MOE_ERR_UNSUPPORTED, std::string(name) + " is " + dtype_name(t) +
                                    ": collectives take f32, bf16, f16, i32 or i64 tensors");
  }
}

ncclRedOp_t nccl_op(int32_t op, moe_dtype t) {
  switch (op) {
    case MOE_REDUCE_SUM: return ncclSum;
    case MOE_REDUCE_MAX: return ncclMax;
    case MOE_REDUCE_MIN: return ncclMin;
    case MOE_REDUCE_AVG:
      if (t == MOE_DTYPE_I32 || t == MOE_DTYPE_I64)
        fail(MOE_ERR_UNSUPPORTED, std::string("MOE_REDUCE_AVG of ") + dtype_name(t) + " tensors is not supported");
      return ncclAvg;
    default:
      invalid("reduction " + std::to_string(op) +
              " is none of MOE_REDUCE_SUM (0), MOE_REDUCE_MAX (1), MOE_REDUCE_MIN (2), MOE_REDUCE_AVG (3)");
  }
}

moe_comm& comm_of(moe_comm* comm, const moe_backend& be) {
  refuse_unrecordable(be, "collectives");
  if (!comm) invalid("comm (the communicator) is null");
  if (comm->device != be.device)
    invalid("the communicator was made on device " + std::to_string(comm->device) + ", not on this instance's device " +
            std::to_string(be.device));
  return *comm;
}

// Checks that x and y share a dtype and returns it.
moe_dtype common_type(const moe_tensor* x, const moe_tensor* y) {
  if (!x) invalid("x is null");
  if (!y) invalid("y is null");
  if (x->dtype != y->dtype)
    invalid(std::string("x is ") + dtype_name(x->dtype) + " but y is " + dtype_name(y->dtype) +
            ": a collective keeps the dtype");
  nccl_type(x->dtype, "x");
  return x->dtype;
}

}  // namespace

moe_status cuda_comm_unique_id(moe_backend* be, uint8_t id[MOE_COMM_ID_BYTES]) {
  return guarded(be, [&](moe_backend&) {
    check_pointer(id, "id");
    ncclUniqueId unique{};
    check_nccl(nccl().get_unique_id(&unique), "ncclGetUniqueId");
    std::memcpy(id, &unique, sizeof unique);
  });
}

moe_status cuda_comm_init(moe_backend* be, const uint8_t id[MOE_COMM_ID_BYTES], int32_t size, int32_t rank,
                          moe_comm** out) {
  return guarded(be, [&](moe_backend& b) {
    check_pointer(out, "out");
    *out = nullptr;
    refuse_unrecordable(b, "comm_init");
    check_pointer(id, "id");
    if (size < 1) invalid("size=" + std::to_string(size) + " must be at least 1");
    if (rank < 0 || rank >= size)
      invalid("rank=" + std::to_string(rank) + " is outside [0, size = " + std::to_string(size) + ")");
    ncclUniqueId unique{};
    std::memcpy(&unique, id, sizeof unique);
    auto* c = new moe_comm;
    c->size = size;
    c->rank = rank;
    c->device = b.device;
    const ncclResult_t result = nccl().comm_init_rank(&c->comm, size, unique, rank);
    if (result != ncclSuccess) {
      delete c;
      check_nccl(result, ("ncclCommInitRank (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")").c_str());
    }
    *out = c;
  });
}

void cuda_comm_destroy(moe_backend* be, moe_comm* comm) {
  if (!comm) return;
  const moe_status status = guarded(be, [&](moe_backend& b) {
    refuse_unrecordable(b, "comm_destroy");
    // NCCL's kernels on the stream must be done before the communicator goes away.
    const cudaError_t waited = cudaStreamSynchronize(b.stream);
    const ncclResult_t destroyed = nccl().comm_destroy(comm->comm);
    delete comm;
    check_cuda(waited, "waiting for the communicator's work");
    check_nccl(destroyed, "ncclCommDestroy");
  });
  if (status != MOE_OK) log_message(MOE_LOG_WARN, "comm_destroy failed (called while recording a step?)");
}

moe_status cuda_all_reduce(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y, int32_t op) {
  return guarded(be, [&](moe_backend& b) {
    moe_comm& c = comm_of(comm, b);
    const moe_dtype t = common_type(x, y);
    const int64_t n = check_tensor(x, "x", t, -1);
    if (check_tensor(y, "y", t, -1) != n)
      invalid("x " + shape_string(*x) + " and y " + shape_string(*y) + " must have the same number of elements");
    check_nccl(nccl().all_reduce(x->data, y->data, static_cast<size_t>(n), nccl_type(t, "x"), nccl_op(op, t), c.comm,
                                 b.stream),
               "ncclAllReduce");
  });
}

moe_status cuda_all_gather(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y) {
  return guarded(be, [&](moe_backend& b) {
    moe_comm& c = comm_of(comm, b);
    const moe_dtype t = common_type(x, y);
    const int64_t n = check_tensor(x, "x", t, -1);
    if (check_tensor(y, "y", t, -1) != n * c.size)
      invalid("y " + shape_string(*y) + " must have size (" + std::to_string(c.size) + ") times the elements of x " +
              shape_string(*x));
    check_nccl(nccl().all_gather(x->data, y->data, static_cast<size_t>(n), nccl_type(t, "x"), c.comm, b.stream),
               "ncclAllGather");
  });
}

moe_status cuda_reduce_scatter(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y, int32_t op) {
  return guarded(be, [&](moe_backend& b) {
    moe_comm& c = comm_of(comm, b);
    const moe_dtype t = common_type(x, y);
    const int64_t n = check_tensor(y, "y", t, -1);
    if (check_tensor(x, "x", t, -1) != n * c.size)
      invalid("x " + shape_string(*x) + " must have size (" + std::to_string(c.size) + ") times the elements of y " +
              shape_string(*y));
    check_nccl(nccl().reduce_scatter(x->data, y->data, static_cast<size_t>(n), nccl_type(t, "x"), nccl_op(op, t),
                                     c.comm, b.stream),
               "ncclReduceScatter");
  });
}

moe_status cuda_all_to_all(moe_backend* be, moe_comm* comm, const moe_tensor* x, const int64_t* send_counts,
                           moe_tensor* y, const int64_t* recv_counts) {
  return guarded(be, [&](moe_backend& b) {
    moe_comm& c = comm_of(comm, b);
    const moe_dtype t = common_type(x, y);
    const int64_t nx = check_tensor(x, "x", t, -1), ny = check_tensor(y, "y", t, -1);
    check_pointer(send_counts, "send_counts");
    check_pointer(recv_counts, "recv_counts");
    int64_t sent = 0, received = 0;
    for (int32_t r = 0; r < c.size; ++r) {
      if (send_counts[r] < 0 || recv_counts[r] < 0)
        invalid("send_counts[" + std::to_string(r) + "] = " + std::to_string(send_counts[r]) + " and recv_counts[" +
                std::to_string(r) + "] = " + std::to_string(recv_counts[r]) + " must not be negative");
      sent += send_counts[r];
      received += recv_counts[r];
    }
    if (sent > nx) invalid("send_counts add up to " + std::to_string(sent) + ", more than x's " + std::to_string(nx));
    if (received > ny)
      invalid("recv_counts add up to " + std::to_string(received) + ", more than y's " + std::to_string(ny));
    const ncclDataType_t type = nccl_type(t, "x");
    const size_t element = t == MOE_DTYPE_F32 || t == MOE_DTYPE_I32 ? 4 : (t == MOE_DTYPE_I64 ? 8 : 2);
    const NcclLibrary& l = nccl();
    check_nccl(l.group_start(), "ncclGroupStart");
    // Every send and receive of the exchange in one group: NCCL runs them together, without deadlock.
    ncclResult_t result = ncclSuccess;
    int64_t send_at = 0, recv_at = 0;
    for (int32_t r = 0; r < c.size && result == ncclSuccess; ++r) {
      if (send_counts[r] > 0)
        result = l.send(static_cast<const char*>(x->data) + send_at * element, static_cast<size_t>(send_counts[r]),
                        type, r, c.comm, b.stream);
      if (result == ncclSuccess && recv_counts[r] > 0)
        result = l.recv(static_cast<char*>(y->data) + recv_at * element, static_cast<size_t>(recv_counts[r]), type, r,
                        c.comm, b.stream);
      send_at += send_counts[r];
      recv_at += recv_counts[r];
    }
    const ncclResult_t ended = l.group_end();
    check_nccl(result, "ncclSend/ncclRecv");
    check_nccl(ended, "ncclGroupEnd");
  });
}

}  // namespace moe_cuda
