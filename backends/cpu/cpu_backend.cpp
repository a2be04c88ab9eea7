// Instances: create (threads, kernels, description), destroy, describe.
#include "cpu_backend.h"

#include <cpuid.h>
#include <omp.h>

#include <cstring>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>

#include "backend_ops.h"
#include "errors.h"
#include "kernel_select.h"

namespace moe_cpu {
namespace {

std::string cpu_brand() {
  unsigned int regs[12] = {};
  unsigned int max_leaf = __get_cpuid_max(0x80000000u, nullptr);
  if (max_leaf < 0x80000004u) return "x86-64 CPU";
  for (unsigned int i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char text[49] = {};
  std::memcpy(text, regs, 48);
  std::string brand = text;
  brand.erase(0, brand.find_first_not_of(' '));
  brand.erase(brand.find_last_not_of(' ') + 1);
  return brand.empty() ? "x86-64 CPU" : brand;
}

std::string describe(int threads, const KernelTable& kernels) {
  std::string features = "avx2";
  if (__builtin_cpu_supports("avx512f")) features += " avx512f";
  if (__builtin_cpu_supports("avx512bf16")) features += " avx512_bf16";
  if (__builtin_cpu_supports("amx-bf16")) features += " amx_bf16";
  const dnnl_version_t* v = dnnl_version();
  return cpu_brand() + ", " + std::to_string(threads) + (threads == 1 ? " thread" : " threads") + ", " + features +
         "; kernels " + kernels.isa + ", oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch);
}

}  // namespace

moe_backend& backend_of(moe_backend* be) {
  if (!be) invalid("backend instance is null");
  return *be;
}

moe_status cpu_create(const moe_backend_options* options, moe_backend** out) {
  return guarded([&] {
    if (!out) invalid("out (the new instance) is null");
    *out = nullptr;
    int threads = 0;
    if (MOE_STRUCT_HAS(options, moe_backend_options, num_threads)) threads = options->num_threads;
    // Far more threads than any machine has cores would only exhaust the process.
    if (threads < 0 || threads > 4096)
      invalid("num_threads is " + std::to_string(threads) + ": it must be in [0, 4096] (0 means one per core)");
    if (threads == 0) threads = omp_get_num_procs();
    const KernelTable& kernels = select_kernels();
    *out = new moe_backend(threads, kernels, describe(threads, kernels));
  });
}

void cpu_destroy(moe_backend* be) { delete be; }

const char* cpu_device_description(moe_backend* be) { return be ? be->description.c_str() : "cpu"; }

}  // namespace moe_cpu
