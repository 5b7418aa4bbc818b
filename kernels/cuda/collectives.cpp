// kernels/collectives.h: one NCCL communicator per process, on the engine's stream. Without
// NCCL in the build, nccl_built() is false and the rest refuses to run.
#include "kernels/collectives.h"

#include <cstring>

#include "kernels/cuda/context.h"

#ifdef MACER_HAVE_NCCL
#include <nccl.h>
#define MACER_NCCL_CHECK(call)                                                                   \
  do {                                                                                           \
    ncclResult_t macer_nccl_r_ = (call);                                                         \
    MACER_CHECK(macer_nccl_r_ == ncclSuccess,                                                    \
                #call << " failed: " << ncclGetErrorString(macer_nccl_r_) << " (" << __FILE__ << ":" \
                      << __LINE__ << ")");                                                       \
  } while (0)
#endif

namespace macer::kernels::cuda {

#ifdef MACER_HAVE_NCCL
namespace {
ncclComm_t& comm() {
  static ncclComm_t c = nullptr;
  return c;
}
}  // namespace

bool nccl_built() { return true; }

void nccl_unique_id(char (&id)[kNcclIdBytes]) {
  static_assert(sizeof(ncclUniqueId) == kNcclIdBytes, "ncclUniqueId size");
  ncclUniqueId u;
  MACER_NCCL_CHECK(ncclGetUniqueId(&u));
  std::memcpy(id, &u, kNcclIdBytes);
}

void nccl_init(const char (&id)[kNcclIdBytes], int rank, int size) {
  ncclUniqueId u;
  std::memcpy(&u, id, kNcclIdBytes);
  MACER_NCCL_CHECK(ncclCommInitRank(&comm(), size, u, rank));
}

void nccl_allreduce_mean(float* data, int64_t n) {
  MACER_CHECK(comm() != nullptr, "NCCL all-reduce before nccl_init");
  MACER_NCCL_CHECK(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclAvg, comm(), stream()));
}
#else
bool nccl_built() { return false; }
void nccl_unique_id(char (&)[kNcclIdBytes]) { throw Error("this build has no NCCL"); }
void nccl_init(const char (&)[kNcclIdBytes], int, int) { throw Error("this build has no NCCL"); }
void nccl_allreduce_mean(float*, int64_t) { throw Error("this build has no NCCL"); }
#endif

}  // namespace macer::kernels::cuda
