// The op-table entry of a recordable op: calls the op, or, on a thread that is recording on the instance,
// appends the call (with its arguments held, recording.h) to the recording and returns MOE_OK.
#pragma once

#include "cpu_backend.h"
#include "errors.h"
#include "recording.h"

namespace moe_cpu {

template <auto Fn, const char* Name>
struct Recordable;

template <typename... Args, moe_status (*Fn)(moe_backend*, Args...), const char* Name>
struct Recordable<Fn, Name> {
  static moe_status call(moe_backend* be, Args... args) {
    if (!be || !be->recorder.recording_here()) return Fn(be, args...);
    return guarded([&] {
      be->recorder.append(RecordedOp{Name, [be, held = std::make_tuple(HeldArg<Args>(args)...)]() mutable {
                                       return std::apply([be](auto&... h) { return Fn(be, h.get()...); }, held);
                                     }});
    });
  }
};

}  // namespace moe_cpu
