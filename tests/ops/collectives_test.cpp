// The collectives of moe_backend_ops (ABI 1.1) on the CUDA backend: a one-rank communicator on one GPU
// (every collective's plumbing, and bad arguments), and two instances on devices 0 and 1, one thread a
// rank, checked against sums computed here. Skipped, with the reason, where the plugin, its collectives
// or a second GPU are missing. NVLink multicast stays off (NCCL_NVLS_ENABLE=0): on shared hosts it can
// take the GPUs out of service.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend_fixture.h"
#include "plugins/host_api.h"
#include "plugins/registry.h"
#include "tensor/backend.h"
#include "moe/moe.h"
#include "tensor/tensor.h"

namespace moe::testing {
namespace {

std::string plugin_dir() {
  const char* dir = std::getenv("MOE_PLUGIN_DIR");
  return dir && *dir ? dir : MOE_OPS_TEST_PLUGIN_DIR;
}

// The cuda plugin's descriptor, or why there is none to test.
const moe_plugin_descriptor* cuda_plugin(std::string& why_not) {
  PluginSearch search;
  search.application_dirs.push_back(plugin_dir());
  search.use_environment = false;
  search.use_default_dir = false;
  static const std::vector<PluginRecord> records = discover_plugins(search);
  for (const PluginRecord& r : records) {
    if (r.kind != MOE_PLUGIN_KIND_BACKEND || r.name != "cuda") continue;
    if (r.state != MOE_PLUGIN_STATE_LOADED) {
      why_not = "backend plugin 'cuda' cannot run here: " + r.reason;
      return nullptr;
    }
    const auto* ops = static_cast<const moe_backend_ops*>(r.descriptor->ops);
    if (ops->struct_size < offsetof(moe_backend_ops, all_to_all) + sizeof(void*) || !ops->all_to_all) {
      why_not = "backend plugin 'cuda' has no collectives";
      return nullptr;
    }
    return r.descriptor;
  }
  why_not = "backend plugin 'cuda' (libmoe_backend_cuda.so) is not in " + plugin_dir();
  return nullptr;
}

std::unique_ptr<Backend> instance_on(const moe_plugin_descriptor* d, int device, std::string& why_not) {
  moe_backend_options o{};
  o.struct_size = sizeof o;
  o.device = device;
  try {
    return std::make_unique<Backend>(d, o);
  } catch (const std::exception& e) {
    why_not = e.what();
    return nullptr;
  }
}

// One rank: its instance and communicator.
struct Rank {
  Backend* be;
  moe_comm* comm = nullptr;
  const moe_backend_ops& ops() const { return be->ops(); }
};

void init_rank(Rank& r, const uint8_t* id, int32_t size, int32_t rank) {
  r.be->check(r.ops().comm_init(r.be->handle(), id, size, rank, &r.comm), "comm_init");
}

std::vector<float> values_of(int rank, size_t n, uint32_t salt) { return random_floats(n, 1000 * salt + rank); }

// What rank `rank` of `size` gets from each collective when rank r contributes values_of(r, ...).
struct Results {
  std::vector<float> all_reduce, all_gather, reduce_scatter, all_to_all;
};

constexpr size_t kN = 1000;

// send_counts[r]: what this rank sends to rank r in the all-to-all (uneven on purpose).
int64_t send_count(int from, int to) { return 3 + 2 * from + 5 * to; }

Results run_collectives(Rank& r, int size, int rank) {
  Backend& be = *r.be;
  const moe_backend_ops& ops = r.ops();
  Results out;
  Tensor x = Tensor::from_host(be, MOE_DTYPE_F32, {int64_t{kN}}, values_of(rank, kN, 1).data());
  Tensor reduced = Tensor::empty(be, MOE_DTYPE_F32, {int64_t{kN}});
  moe_tensor xr = x.ref(), yr = reduced.ref();
  be.check(ops.all_reduce(be.handle(), r.comm, &xr, &yr, MOE_REDUCE_SUM), "all_reduce");

  Tensor gathered = Tensor::empty(be, MOE_DTYPE_F32, {int64_t{kN} * size});
  moe_tensor gr = gathered.ref();
  be.check(ops.all_gather(be.handle(), r.comm, &xr, &gr), "all_gather");

  Tensor big = Tensor::from_host(be, MOE_DTYPE_F32, {int64_t{kN} * size}, values_of(rank, kN * size, 2).data());
  Tensor scattered = Tensor::empty(be, MOE_DTYPE_F32, {int64_t{kN}});
  moe_tensor br = big.ref(), sr = scattered.ref();
  be.check(ops.reduce_scatter(be.handle(), r.comm, &br, &sr, MOE_REDUCE_SUM), "reduce_scatter");

  std::vector<int64_t> send(size), recv(size);
  int64_t sent = 0, received = 0;
  for (int p = 0; p < size; ++p) {
    send[p] = send_count(rank, p);
    recv[p] = send_count(p, rank);
    sent += send[p];
    received += recv[p];
  }
  Tensor outgoing = Tensor::from_host(be, MOE_DTYPE_F32, {sent}, values_of(rank, sent, 3).data());
  Tensor incoming = Tensor::empty(be, MOE_DTYPE_F32, {received});
  moe_tensor orr = outgoing.ref(), ir = incoming.ref();
  be.check(ops.all_to_all(be.handle(), r.comm, &orr, send.data(), &ir, recv.data()), "all_to_all");

  be.check(ops.synchronize(be.handle()), "synchronize");
  out.all_reduce = reduced.to_vector<float>();
  out.all_gather = gathered.to_vector<float>();
  out.reduce_scatter = scattered.to_vector<float>();
  out.all_to_all = incoming.to_vector<float>();
  return out;
}

Results expected(int size, int rank) {
  Results want;
  want.all_reduce.assign(kN, 0.f);
  want.reduce_scatter.assign(kN, 0.f);
  for (int p = 0; p < size; ++p) {
    auto v = values_of(p, kN, 1);
    for (size_t i = 0; i < kN; ++i) want.all_reduce[i] += v[i];
    want.all_gather.insert(want.all_gather.end(), v.begin(), v.end());
    auto big = values_of(p, kN * size, 2);
    for (size_t i = 0; i < kN; ++i) want.reduce_scatter[i] += big[rank * kN + i];
    // Rank p's block for `rank` starts after its blocks for ranks below.
    int64_t sent = 0, at = 0;
    for (int q = 0; q < size; ++q) sent += send_count(p, q);
    for (int q = 0; q < rank; ++q) at += send_count(p, q);
    auto outgoing = values_of(p, sent, 3);
    want.all_to_all.insert(want.all_to_all.end(), outgoing.begin() + at, outgoing.begin() + at + send_count(p, rank));
  }
  return want;
}

void expect_results(const Results& got, const Results& want, int rank) {
  SCOPED_TRACE(::testing::Message() << "rank " << rank);
  EXPECT_TRUE(close_to(got.all_reduce, to_double(want.all_reduce), kF32Tolerance)) << "all_reduce";
  EXPECT_EQ(got.all_gather, want.all_gather) << "all_gather";
  EXPECT_TRUE(close_to(got.reduce_scatter, to_double(want.reduce_scatter), kF32Tolerance)) << "reduce_scatter";
  EXPECT_EQ(got.all_to_all, want.all_to_all) << "all_to_all";
}

class CollectivesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    plugin_ = cuda_plugin(why_not_);
    if (!plugin_) GTEST_SKIP() << why_not_;
  }
  const moe_plugin_descriptor* plugin_ = nullptr;
  std::string why_not_;
};

TEST_F(CollectivesTest, OneRankOnOneGpu) {
  std::unique_ptr<Backend> be = instance_on(plugin_, 0, why_not_);
  ASSERT_TRUE(be) << why_not_;
  uint8_t id[MOE_COMM_ID_BYTES];
  be->check(be->ops().comm_unique_id(be->handle(), id), "comm_unique_id");
  Rank r{be.get()};
  moe_comm* bad = nullptr;
  EXPECT_EQ(be->ops().comm_init(be->handle(), id, 1, 1, &bad), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(take_plugin_error().find("rank=1"), std::string::npos);
  init_rank(r, id, 1, 0);
  expect_results(run_collectives(r, 1, 0), expected(1, 0), 0);
  // Bad arguments are refused with the argument named, and the communicator still works afterwards.
  Tensor x = Tensor::empty(*be, MOE_DTYPE_F32, {8}), y = Tensor::empty(*be, MOE_DTYPE_F32, {7});
  moe_tensor xr = x.ref(), yr = y.ref();
  EXPECT_EQ(be->ops().all_reduce(be->handle(), r.comm, &xr, &yr, MOE_REDUCE_SUM), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(take_plugin_error().find("same number of elements"), std::string::npos);
  EXPECT_EQ(be->ops().all_reduce(be->handle(), r.comm, &xr, &xr, 42), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(take_plugin_error().find("reduction 42"), std::string::npos);
  EXPECT_EQ(be->ops().all_reduce(be->handle(), nullptr, &xr, &xr, MOE_REDUCE_SUM), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(take_plugin_error().find("comm"), std::string::npos);
  expect_results(run_collectives(r, 1, 0), expected(1, 0), 0);
  be->ops().comm_destroy(be->handle(), r.comm);
}

TEST_F(CollectivesTest, TwoRanksOnTwoGpus) {
  std::unique_ptr<Backend> be0 = instance_on(plugin_, 0, why_not_);
  ASSERT_TRUE(be0) << why_not_;
  std::unique_ptr<Backend> be1 = instance_on(plugin_, 1, why_not_);
  if (!be1) GTEST_SKIP() << "two GPUs are needed: " << why_not_;
  uint8_t id[MOE_COMM_ID_BYTES];
  be0->check(be0->ops().comm_unique_id(be0->handle(), id), "comm_unique_id");
  std::vector<Rank> ranks = {Rank{be0.get()}, Rank{be1.get()}};
  std::vector<Results> got(2);
  std::vector<std::string> failures(2);
  // comm_init returns once every rank has joined, so each rank has its own thread.
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank)
    threads.emplace_back([&, rank] {
      try {
        init_rank(ranks[rank], id, 2, rank);
        got[rank] = run_collectives(ranks[rank], 2, rank);
        ranks[rank].ops().comm_destroy(ranks[rank].be->handle(), ranks[rank].comm);
      } catch (const std::exception& e) {
        failures[rank] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(failures[rank], "") << "rank " << rank;
    expect_results(got[rank], expected(2, rank), rank);
  }
}

}  // namespace
}  // namespace moe::testing
