// moe_permute's work for one block of kSortThreads threads, shared by the recorded moe_permute kernel
// (moe_permute_device.cu) and by route_and_permute's one-block kernel (route_and_permute.cu).
#pragma once

#include <cstdint>

#include "device_index_checks.cuh"

namespace moe_cuda {

constexpr int kSortThreads = 256;

// Counts the rows of each expert, scans the counts into offsets, places each flat index t*top_k + j in its
// expert's rows in flat order (source), and copies the token rows of x into x_sorted (moe_permute_device.h
// says how rows with a bad id are placed). Every thread of a block of kSortThreads must call it (it
// synchronises them); ids written by the block before the call must be made visible by a __syncthreads().
// counts: experts + 1 ints of shared memory; scan, chunk: kSortThreads ints of shared memory each.
__device__ inline void permute_in_block(const float* x, const int32_t* ids, int64_t tokens, int top_k, int experts,
                                        int64_t dim, float* x_sorted, int64_t* offsets, int32_t* source,
                                        IndexError* errors, int* counts, int* scan, int* chunk) {
  const int tid = threadIdx.x, buckets = experts + 1;
  const int64_t rows = tokens * top_k;
  for (int e = tid; e < buckets; e += kSortThreads) counts[e] = 0;
  __syncthreads();
  for (int64_t f = tid; f < rows; f += kSortThreads) {
    const int id = ids[f];
    const bool ok = index_ok(errors, IndexCheck::kPermuteIds, f / top_k, f % top_k, id, 0, experts - 1);
    atomicAdd(&counts[ok ? id : experts], 1);
  }
  __syncthreads();
  // Exclusive scan of the counts: each thread sums a run of buckets, the runs' sums are scanned.
  const int per = (buckets + kSortThreads - 1) / kSortThreads, lo = min(tid * per, buckets),
            hi = min(lo + per, buckets);
  int sum = 0;
  for (int e = lo; e < hi; ++e) sum += counts[e];
  scan[tid] = sum;
  __syncthreads();
  for (int step = 1; step < kSortThreads; step *= 2) {
    const int v = tid >= step ? scan[tid - step] : 0;
    __syncthreads();
    scan[tid] += v;
    __syncthreads();
  }
  int start = scan[tid] - sum;
  for (int e = lo; e < hi; ++e) {
    const int c = counts[e];
    counts[e] = start;  // from here on: the bucket's next free row
    offsets[e] = start;  // offsets[experts]: where the bad rows begin, i.e. the number of good rows
    start += c;
  }
  __syncthreads();
  // Placement in flat order, a chunk of kSortThreads flat indices at a time: within a chunk, a row's place
  // in its bucket is the number of earlier rows of the chunk in that bucket.
  for (int64_t f0 = 0; f0 < rows; f0 += kSortThreads) {
    const int64_t f = f0 + tid;
    int b = -1;
    if (f < rows) {
      const int id = ids[f];
      b = id >= 0 && id < experts ? id : experts;
    }
    chunk[tid] = b;
    __syncthreads();
    if (b >= 0) {
      int rank = 0;
      for (int i = 0; i < tid; ++i) rank += chunk[i] == b;
      source[counts[b] + rank] = static_cast<int32_t>(f);
    }
    __syncthreads();
    if (b >= 0) atomicAdd(&counts[b], 1);
    __syncthreads();
  }
  // source is complete and visible to the block: copy the rows.
  for (int64_t i = tid; i < rows * dim; i += kSortThreads) {
    const int64_t r = i / dim;
    x_sorted[i] = x[source[r] / top_k * dim + i % dim];
  }
}

}  // namespace moe_cuda
