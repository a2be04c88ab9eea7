// The plugin's view of the machine before any instance exists.
#pragma once

#include <cstdint>
#include <string>

namespace moe_cuda {

// Why `device` cannot run this backend ("" when it can): no driver, no such device, too old a GPU.
std::string usable_device_problem(int device);
// The descriptor's score(): 0 where device 0 cannot run this backend (the reason goes to the host's log).
int32_t score();

}  // namespace moe_cuda
