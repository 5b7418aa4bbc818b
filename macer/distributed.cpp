// macer/distributed.h over MPI (Open MPI, or any MPI a launcher brings) and NCCL for GPU
// gradients; compiled to a world of one when the build has no MPI.
#include "macer/distributed.h"

#include <cstdlib>
#include <cstring>

#include "engine/device.h"
#include "kernels/check.h"
#ifdef MACER_HAVE_CUDA
#include "kernels/collectives.h"
#endif
#ifdef MACER_HAVE_MPI
#include <mpi.h>
#endif

namespace macer::dist {

namespace {
int g_rank = 0, g_size = 1;
bool g_joined = false;
bool g_nccl_ready = false;

#ifdef MACER_HAVE_MPI
#define MACER_MPI_CHECK(call) MACER_CHECK((call) == MPI_SUCCESS, #call << " failed")

// Set by mpirun/mpiexec (Open MPI, MPICH, Intel MPI) or srun (PMI, PMIx).
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

// Average on the device: NCCL, bootstrapped on first use with an id broadcast over MPI.
void average_cuda(Tensor& t) {
#ifdef MACER_HAVE_CUDA
  if (kernels::cuda::nccl_built()) {
    if (!g_nccl_ready) {
      char id[kernels::cuda::kNcclIdBytes];
      if (g_rank == 0) kernels::cuda::nccl_unique_id(id);
      MACER_MPI_CHECK(MPI_Bcast(id, kernels::cuda::kNcclIdBytes, MPI_BYTE, 0, MPI_COMM_WORLD));
      kernels::cuda::nccl_init(id, g_rank, g_size);
      g_nccl_ready = true;
    }
    kernels::cuda::nccl_allreduce_mean(t.data(), t.numel());
    return;
  }
#endif
  Tensor host = t.to(Device::CPU);  // no NCCL: through the host (correct, slower)
  average(host);
  t.copy_from(host);
}
#endif
}  // namespace

void init(int* argc, char*** argv) {
#ifdef MACER_HAVE_MPI
  if (!launched_by_mpi()) return;
  int provided = 0;
  MACER_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  g_joined = true;
  MACER_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
  MACER_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
  // The rank's place among the ranks on its machine picks its GPU.
  MPI_Comm local;
  int local_rank = 0;
  MACER_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local));
  MACER_MPI_CHECK(MPI_Comm_rank(local, &local_rank));
  MPI_Comm_free(&local);
  select_cuda_device(local_rank);
#else
  (void)argc, (void)argv;
#endif
}

void finalize() {
#ifdef MACER_HAVE_MPI
  if (g_joined) MPI_Finalize();
  g_joined = false;
#endif
}

int rank() { return g_rank; }
int size() { return g_size; }
bool is_root() { return g_rank == 0; }

void abort_all(int code) {
#ifdef MACER_HAVE_MPI
  if (g_joined && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

void barrier() {
#ifdef MACER_HAVE_MPI
  if (g_size > 1) MACER_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
#endif
}

void average(Tensor& t) {
  if (g_size == 1) return;
#ifdef MACER_HAVE_MPI
  MACER_CHECK(t.dtype() == DType::F32, "dist::average: float tensors only");
  if (t.device() != Device::CPU) return average_cuda(t);
  float* p = t.data();
  const float inv = 1.0f / float(g_size);
  // MPI counts are int: large buffers go in pieces.
  for (int64_t done = 0; done < t.numel();) {
    int n = int(std::min<int64_t>(t.numel() - done, int64_t(1) << 30));
    MACER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + done, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    done += n;
  }
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= inv;
#endif
}

void sum(std::vector<double>& v) {
#ifdef MACER_HAVE_MPI
  if (g_size > 1 && !v.empty())
    MACER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
#else
  (void)v;
#endif
}

void min(std::vector<int64_t>& v) {
#ifdef MACER_HAVE_MPI
  if (g_size > 1 && !v.empty())
    MACER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD));
#else
  (void)v;
#endif
}

void broadcast(std::string& s) {
#ifdef MACER_HAVE_MPI
  if (g_size == 1) return;
  int64_t n = int64_t(s.size());
  MACER_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
  s.resize(size_t(n));
  if (n > 0) MACER_MPI_CHECK(MPI_Bcast(s.data(), int(n), MPI_CHAR, 0, MPI_COMM_WORLD));
#else
  (void)s;
#endif
}

void broadcast(std::vector<int64_t>& v) {
#ifdef MACER_HAVE_MPI
  if (g_size > 1 && !v.empty())
    MACER_MPI_CHECK(MPI_Bcast(v.data(), int(v.size()), MPI_INT64_T, 0, MPI_COMM_WORLD));
#else
  (void)v;
#endif
}

std::vector<double> gather(const std::vector<double>& mine) {
  if (g_size == 1) return mine;
  std::vector<double> all;
#ifdef MACER_HAVE_MPI
  if (g_rank == 0) all.resize(mine.size() * size_t(g_size));
  MACER_MPI_CHECK(MPI_Gather(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), int(mine.size()), MPI_DOUBLE, 0,
                             MPI_COMM_WORLD));
#endif
  return all;
}

}  // namespace macer::dist
