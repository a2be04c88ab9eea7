// One CPU backend instance: its thread count, the kernel table chosen for this CPU, and the cache
// of oneDNN matmul primitives. Instances are independent; every op may run from several application
// threads at once (each with its own OpenMP team of `threads`).
#pragma once

#include <string>

#include "kernels/kernel_table.h"
#include "onednn_matmul.h"
#include "recording.h"

struct moe_backend {
  moe_backend(int threads, const moe_cpu::KernelTable& kernels, std::string description)
      : threads(threads), kernels(kernels), description(std::move(description)), matmuls(threads) {}

  const int threads;
  const moe_cpu::KernelTable& kernels;
  const std::string description;
  moe_cpu::MatmulCache matmuls;
  moe_cpu::Recorder recorder;  // recorded steps (recording.h)
};
