// NCCL for data-parallel training on GPUs: the communicator (bootstrapped by the caller, which
// broadcasts the unique id over MPI) and the in-place average of a device buffer on the stream.
#pragma once
#include <cstdint>

namespace macer::kernels::cuda {

constexpr int kNcclIdBytes = 128;  // sizeof(ncclUniqueId)

// True when the build links NCCL.
bool nccl_built();
// Rank 0 makes the id; every rank passes the same bytes to nccl_init.
void nccl_unique_id(char (&id)[kNcclIdBytes]);
void nccl_init(const char (&id)[kNcclIdBytes], int rank, int size);
// data[0..n) <- the mean over ranks, queued on the engine's stream (no host synchronisation).
void nccl_allreduce_mean(float* data, int64_t n);

}  // namespace macer::kernels::cuda
