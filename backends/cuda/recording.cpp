#include "recording.h"

#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_index_checks.h"

namespace moe_cuda {
namespace {

// Frees blocks in stream order (after the work enqueued so far); a failure is only logged, since free has
// no status to return it in.
void free_blocks(moe_backend& be, const std::vector<void*>& blocks) {
  for (void* p : blocks) {
    const cudaError_t status = cudaFreeAsync(p, be.stream);
    if (status != cudaSuccess) {
      cudaGetLastError();
      log_message(MOE_LOG_WARN, std::string("freeing a block put off by a recording failed: ") +
                                    cudaGetErrorString(status));
    }
  }
}

void destroy_graph(cudaGraph_t graph, cudaGraphExec_t exec) {
  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
}

// Ends the recording state (the capture itself is ended by the caller) and wakes the waiting threads.
void end_state(moe_backend& be) {
  be.recording.active.store(false, std::memory_order_relaxed);
  be.recording.thread = std::thread::id();
  be.recording_ended.notify_all();
}

}  // namespace

bool recording(const moe_backend& be) {
  return be.recording.active.load(std::memory_order_relaxed) && be.recording.thread == std::this_thread::get_id();
}

void note_recording_failure(moe_backend& be, const std::string& message) {
  if (recording(be) && be.recording.first_failure.empty()) be.recording.first_failure = message;
}

void refuse_while_recording(const moe_backend& be, const char* what) {
  if (recording(be))
    invalid(std::string(what) + " while recording a step: nothing crosses to the host while recording (call "
                                "record_end first; a replayed step reads its inputs from device buffers)");
}

void refuse_unrecordable(const moe_backend& be, const char* what) {
  if (recording(be)) fail(MOE_ERR_UNSUPPORTED, std::string(what) + " cannot be recorded in a step");
}

void* alloc_while_recording(moe_backend& be, size_t bytes) {
  void* p = nullptr;
  check_cuda(cudaMallocAsync(&p, bytes ? bytes : 256, be.recording.side_stream),
             ("allocating " + std::to_string(bytes) + " bytes of device memory while recording").c_str());
  // The block must be usable by the captured work and stay valid after the recording: wait for the
  // allocation itself (the side stream holds nothing else).
  const cudaError_t status = cudaStreamSynchronize(be.recording.side_stream);
  if (status != cudaSuccess) {
    cudaFreeAsync(p, be.recording.side_stream);
    check_cuda(status, "waiting for an allocation while recording");
  }
  return p;
}

void free_while_recording(moe_backend& be, void* ptr) { be.recording.put_off_frees.push_back(ptr); }

void* step_scratch(moe_backend& be, size_t bytes) {
  void* p = nullptr;
  check_cuda(cudaMallocAsync(&p, bytes ? bytes : 256, be.recording.side_stream),
             ("allocating " + std::to_string(bytes) + " bytes of a recorded step's temporaries").c_str());
  be.recording.step_scratch.push_back(p);  // from here on freed with the step or the discarded recording
  check_cuda(cudaMemsetAsync(p, 0, bytes, be.recording.side_stream), "zeroing a recorded step's temporaries");
  check_cuda(cudaStreamSynchronize(be.recording.side_stream), "waiting for a recorded step's temporaries");
  return p;
}

void release_recording(moe_backend& be) noexcept {
  RecordingState& r = be.recording;
  if (r.active.load()) {
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(be.stream, &graph);
    cudaGetLastError();
    destroy_graph(graph, nullptr);
    free_blocks(be, r.put_off_frees);
    r.put_off_frees.clear();
    free_blocks(be, r.step_scratch);
    r.step_scratch.clear();
    r.active.store(false);
  }
  if (r.side_stream) cudaStreamDestroy(r.side_stream);
  r.side_stream = nullptr;
  free_index_errors(be);
}

moe_status cuda_record_begin(moe_backend* be) {
  return guarded(be, [&](moe_backend& b) {
    RecordingState& r = b.recording;
    if (recording(b)) invalid("record_begin: this thread is already recording on this instance");
    if (!r.side_stream)
      check_cuda(cudaStreamCreateWithFlags(&r.side_stream, cudaStreamNonBlocking),
                 "creating the stream for allocations while recording");
    device_index_errors(b);  // made now, not in the middle of a recording
    // Relaxed: the recording thread may still make calls that capture would otherwise forbid (the
    // allocations on the side stream and the wait for them, cuBLAS's queries).
    check_cuda(cudaStreamBeginCapture(b.stream, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
    r.first_failure.clear();
    r.put_off_frees.clear();
    r.step_scratch.clear();
    r.thread = std::this_thread::get_id();
    r.active.store(true, std::memory_order_relaxed);
  });
}

moe_status cuda_record_end(moe_backend* be, moe_recorded_step** out) {
  return guarded(be, [&](moe_backend& b) {
    if (out) *out = nullptr;
    RecordingState& r = b.recording;
    if (!recording(b)) invalid("record_end without record_begin on this thread");
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(b.stream, &graph);
    if (ended != cudaSuccess) cudaGetLastError();
    const std::string failure = r.first_failure;
    end_state(b);
    // Now outside the capture: the frees put off are real frees in stream order.
    free_blocks(b, r.put_off_frees);
    r.put_off_frees.clear();
    std::vector<void*> scratch = std::move(r.step_scratch);
    r.step_scratch.clear();
    auto discard = [&](const std::string& why) {
      destroy_graph(graph, nullptr);
      free_blocks(b, scratch);
      invalid("record_end: the recording failed and was discarded: " + why);
    };
    if (!failure.empty()) discard(failure);
    if (ended != cudaSuccess || !graph)
      discard(std::string("ending the stream capture failed: ") + cudaGetErrorName(ended) + " (" +
              cudaGetErrorString(ended) + ")");
    if (!out) discard("out (the recorded step) is null");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess) {
      cudaGetLastError();
      discard(std::string("cudaGraphInstantiate failed: ") + cudaGetErrorName(made) + " (" +
              cudaGetErrorString(made) + ")");
    }
    // Uploads the graph's work descriptions now, so that the first replay costs what the others do.
    const cudaError_t uploaded = cudaGraphUpload(exec, b.stream);
    if (uploaded != cudaSuccess) {
      cudaGetLastError();
      destroy_graph(nullptr, exec);
      discard(std::string("cudaGraphUpload failed: ") + cudaGetErrorName(uploaded));
    }
    auto* step = new moe_recorded_step;
    step->graph = graph;
    step->exec = exec;
    step->scratch = std::move(scratch);
    *out = step;
  });
}

moe_status cuda_replay_step(moe_backend* be, moe_recorded_step* step) {
  return guarded(be, [&](moe_backend& b) {
    if (!step || !step->exec) invalid("replay_step: step is null");
    if (recording(b)) invalid("replay_step while recording a step: a recording cannot contain a replay");
    check_cuda(cudaGraphLaunch(step->exec, b.stream), "cudaGraphLaunch (replaying a recorded step)");
  });
}

void cuda_destroy_step(moe_backend* be, moe_recorded_step* step) {
  if (!step) return;
  const moe_status status = guarded(be, [&](moe_backend& b) {
    if (recording(b)) invalid("destroy_step while recording a step (a wait for the device cannot be recorded)");
    // The step's pending replays use its graph.
    check_cuda(cudaStreamSynchronize(b.stream), "waiting for a recorded step's replays before destroying it");
    destroy_graph(step->graph, step->exec);
    step->graph = nullptr;
    step->exec = nullptr;
    free_blocks(b, step->scratch);
    step->scratch.clear();
  });
  if (status != MOE_OK)
    log_message(MOE_LOG_WARN, "destroy_step could not wait for the step's replays (or was called while recording); "
                              "the step was not freed");
  else
    delete step;
}

}  // namespace moe_cuda
