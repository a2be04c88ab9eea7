// Recorded steps (plugin ABI 1.2: record_begin, record_end, replay_step, destroy_step) over CUDA stream
// capture: between record_begin and record_end the recording thread's ops are captured from the
// instance's stream into a CUDA graph instead of running; replay_step launches the instantiated graph.
//
// While a thread records:
//  - the other threads' ops wait until it ends (guarded() in backend_instance.h), so that only its work
//    lands in the capture;
//  - ops whose inputs include indices take their recording paths (no host waits; launch geometry from
//    shapes only) and check the indices on the device (device_index_checks.h);
//  - alloc takes memory from the device's pool on a side stream that is not captured and waits for it,
//    so the block is ordinary memory that outlives the recording (a captured cudaMallocAsync would be a
//    graph allocation node, which blocks relaunch while the block is alive);
//  - free is put off until record_end (the host keeps the blocks the step uses until it destroys the step);
//  - copy_from_host, copy_to_host, synchronize, ops that plan on the host and collectives fail.
// An op's own temporaries (DeviceBuffer) are allocated and freed inside the capture: they become graph
// allocation and free nodes of the same graph, which relaunches freely.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "device_index_checks.h"
#include "moe/moe_plugin.h"

struct moe_recorded_step {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::vector<void*> scratch;  // the ops' temporaries that the step owns (step_scratch), freed with it
};

namespace moe_cuda {

// An instance's recording state (a member of moe_backend, guarded by its mutex; `active` is also read
// without the lock by the profiler, which must not wait on a capturing stream).
struct RecordingState {
  std::atomic<bool> active{false};
  std::thread::id thread;            // the recording thread while active
  std::string first_failure;         // the first op failure while recording ("" if none)
  std::vector<void*> put_off_frees;  // frees while recording, done at record_end
  std::vector<void*> step_scratch;   // temporaries of the step being recorded (step_scratch())
  cudaStream_t side_stream = nullptr;  // allocations while recording (never captured)
  IndexError* index_errors = nullptr;  // mapped page-locked record (device_index_checks.h)
};

moe_status cuda_record_begin(moe_backend* be);
moe_status cuda_record_end(moe_backend* be, moe_recorded_step** out);
moe_status cuda_replay_step(moe_backend* be, moe_recorded_step* step);
void cuda_destroy_step(moe_backend* be, moe_recorded_step* step);

// True when the calling thread is recording on `be` (under its lock): ops take their recording paths.
bool recording(const moe_backend& be);
// Called by guarded() when an op fails: the first failure while this thread records is what record_end
// reports.
void note_recording_failure(moe_backend& be, const std::string& message);
// Copies to and from the host and waits, while recording: MOE_ERR_INVALID_ARGUMENT naming `what`.
void refuse_while_recording(const moe_backend& be, const char* what);
// What cannot be recorded (collectives): MOE_ERR_UNSUPPORTED naming `what`.
void refuse_unrecordable(const moe_backend& be, const char* what);
// alloc and free while recording (memory_ops.cpp calls these when recording(be)).
void* alloc_while_recording(moe_backend& be, size_t bytes);
void free_while_recording(moe_backend& be, void* ptr);
// An op's temporary while recording, owned by the step being recorded (freed when the step is destroyed
// or the recording discarded) and set to zero once now: ordinary memory, so the graph has no allocation
// and free nodes between the op's kernels, which would break their programmatic launches
// (pdl_launch.cuh). Its contents persist across replays. Meant for small temporaries: each recorded op
// keeps its own for the life of the step.
void* step_scratch(moe_backend& be, size_t bytes);
// Instance destruction: ends an unfinished capture and frees the recording's resources.
void release_recording(moe_backend& be) noexcept;

}  // namespace moe_cuda
