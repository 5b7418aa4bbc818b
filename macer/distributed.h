// Many processes, one job: the world of ranks a program was launched into (mpirun, srun) and the
// few collectives data-parallel training and sharded certification need. Without MPI in the
// build, or started without a launcher, the world is one rank and every collective is a no-op.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "kernels/check.h"

namespace macer::dist {

// An error that every rank meets at the same point (one decided from a collective): rank 0
// reports it and the others end quietly, instead of N copies of one line.
struct CollectiveError : Error {
  using Error::Error;
};

// Joins the launcher's world (MPI_Init) when MPI is built and a launcher started this process,
// and gives each rank on a machine its own GPU (local rank modulo the GPUs it sees).
void init(int* argc, char*** argv);
void finalize();  // MPI_Finalize when init joined a world

int rank();
int size();
bool is_root();  // rank 0: the one that writes files, logs and progress
// Ends every rank (MPI_Abort): an error on one rank must not leave the others waiting.
[[noreturn]] void abort_all(int code);
void barrier();

// t <- the mean of t over ranks (gradients). CPU tensors: MPI_Allreduce; CUDA tensors: NCCL's
// all-reduce on the engine's stream, or through the host when the build has no NCCL.
void average(Tensor& t);
// In place, on the host: the sum / the minimum over ranks.
void sum(std::vector<double>& v);
void min(std::vector<int64_t>& v);
// Root's value to every rank.
void broadcast(std::string& s);
void broadcast(std::vector<int64_t>& v);  // sizes must agree on every rank
// Every rank's `mine` (the same length everywhere), concatenated in rank order, on the root;
// empty elsewhere.
std::vector<double> gather(const std::vector<double>& mine);

}  // namespace macer::dist
