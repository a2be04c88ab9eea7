// Programmatic dependent launch (Hopper PDL) for the kernels of a recorded step.
//
// A recorded decode step is a chain of small kernels whose cost is mostly the gap between one kernel's
// end and the next one's start. A kernel launched by launch_pdl while a step is recorded may be
// scheduled before the kernel ahead of it has finished (stream capture keeps this as a programmatic
// edge of the graph); it then waits in pdl_wait_and_release() until that kernel has completed and its
// memory is visible. Every kernel launched by launch_pdl calls pdl_wait_and_release() before it reads or
// writes any global memory; only a prefetch into L2 may come first (a hint, which cannot change what is
// read later): of weights, which no kernel of a decode step writes (route_and_permute.cu). It then lets its own successor be scheduled:
// the successor waits for this kernel's completion in the same way, so the order of the stream holds.
//
// griddepcontrol exists from sm_90 on. The plugin's sm_90a machine code has it; its compute_80 PTX,
// which the driver compiles for any other GPU, does not, so pdl_allowed() asks for compute capability
// 9.x, where the sm_90a code is what runs (CMakeLists.txt's -gencode flags).
#pragma once

#include <cuda_runtime.h>

#include "backend_instance.h"
#include "errors.h"

namespace moe_cuda {

__device__ __forceinline__ void pdl_wait_and_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether the next kernel enqueued on be.stream may be launched programmatically: be is recording,
// the device runs the sm_90a code, MOE_CUDA_PDL is not "0", and everything the capture's next node will
// depend on is a kernel node (a programmatic edge joins two kernels; after a copy, memset or memory node
// the launch is an ordinary one).
bool pdl_allowed(moe_backend& be);
// The device's multiprocessor count (launch_pdl keeps grids larger than one wave ordinary).
int multiprocessors(moe_backend& be);

// kernel<<<grid, block, smem, be.stream>>>(args...), programmatic where pdl_allowed(be) says so; the
// kernel must begin with pdl_wait_and_release(). Throws MOE_ERR_BACKEND naming `name` on a launch error.
template <typename... Params, typename... Args>
void launch_pdl(moe_backend& be, const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                Args... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = be.stream;
  config.attrs = &attribute;
  // Only grids of at most one wave: measured on an H200, the kernels of a thousand blocks (attention over a
  // long cache, the experts, the q/k/v product) ran slower launched early, cancelling the small kernels' gain.
  const unsigned blocks = grid.x * grid.y * grid.z;
  config.numAttrs = pdl_allowed(be) && blocks <= static_cast<unsigned>(multiprocessors(be)) ? 1 : 0;
  const cudaError_t status = cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
  if (status != cudaSuccess) check_cuda(status, name);
  check_launch(name);
}

}  // namespace moe_cuda
