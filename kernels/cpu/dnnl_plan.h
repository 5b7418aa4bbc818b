// One oneDNN primitive with its operands (kernels/cpu/dnnl_plan.cpp), the plan type that every
// oneDNN pass of the CPU kernels fills (convolutions in conv2d_dnnl.cpp, bf16 linears in linear.cpp).
#pragma once

#ifdef MACER_HAVE_DNNL
#include <memory>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/precision.h"

namespace macer::kernels::cpu::dnnl_plan {

using dnnl::memory;

dnnl::engine& cpu_engine();
// The operand type of `p`'s products: f32, or bf16 (results and accumulation stay f32).
memory::data_type operand_type(Precision p);

// Per-thread scratch buffers (one per slot, shared by every plan, grown to the largest size asked
// for) that hold operands in the primitive's layout and type when they differ from the engine's.
enum Slot { kSrc, kWei, kDst, kSlots };

// A primitive and its operands, built once per shape and pass. Each operand has the engine's
// view (`user`: float32 or bf16 activations, plain layout, maybe strided) and the primitive's
// (`inner`: maybe blocked, maybe bf16); the reorder between them also casts. Inputs are reordered
// in when the two differ, Out results reordered out when they differ, Accumulate results always
// land in scratch and are added to the engine's, user += result (a reorder with a sum post-op, or
// a plain loop when the two have one dense layout).
struct Plan {
  enum class Kind { In, Out, Accumulate };
  struct Operand {
    int arg;
    Kind kind;
    Slot slot;
    memory user, inner;
    bool same;          // inner is user: used in place
    bool add_in_place;  // an Accumulate in the engine's dense layout, float32: user += inner by a plain
                        // loop (oneDNN's summing reorder took its slow "simple" kernel for it)
    dnnl::reorder move;
  };
  dnnl::primitive primitive;
  std::vector<Operand> operands;

  // Operands are bound to run()'s pointers in the order they are added.
  void add(int arg, Kind kind, Slot slot, const memory::desc& user, const memory::desc& want);
  // Binds data[i] to operand i, brings the inputs in, executes, takes the outputs out, waits.
  // `ready`: inputs (by argument) already in the primitive's layout in another plan's memory
  // (whose desc must equal this plan's inner desc): used as they are, not reordered again.
  // `place`: inputs (by argument) to bring in at the given buffer (inner_bytes(arg) long, kept by
  // the caller for a later plan's `ready`) instead of the thread's scratch slot.
  void run(const std::vector<const void*>& data, const std::unordered_map<int, memory>& ready = {},
           const std::unordered_map<int, void*>& place = {});
  // The bytes of argument `arg` in the primitive's layout and type; 0 when it is the engine's own
  // (no reorder: nothing to keep).
  size_t inner_bytes(int arg) const;
  // The primitive-side memory of argument `arg` after run() (for `ready` of a later plan).
  const memory& inner(int arg) const;
};

// A bf16 matrix product plan: C (M, N) = A (M, K) B (K, N) [+ bias (N)] (Kind::Out) or C += A B
// (Kind::Accumulate), with A and B given by the engine as float32 (M, K) / (K, N) views with
// strides {lda_m, lda_k} / {ldb_k, ldb_n} (a transpose is a swapped stride), C float32 with rows
// `ldc` apart; the operands are cast to bf16 on the way in, the products summed in float32.
// run({a, b, c}) or run({a, b, c, bias}). Used by the bf16 linear and gemm_bf16. B is brought into
// the layout the primitive prefers (blocked: worth it for a linear's weights, read by many rows),
// or with `b_as_given` only cast, dense in its given order (an unfolded chunk read once: the
// blocked reorder cost more than the product, bench/RESULTS.md).
// With `given_bf16`, A and B are given as bf16 already: read in place where their layout is the
// primitive's (a dense, untransposed A; B with `b_as_given`), else only reordered, not cast.
std::unique_ptr<Plan> matmul_plan(int64_t M, int64_t N, int64_t K, memory::dims a_strides, memory::dims b_strides,
                                  int64_t ldc, bool bias, Plan::Kind out, bool b_as_given = false,
                                  bool given_bf16 = false);

[[noreturn]] void throw_dnnl_error(const char* what, const dnnl::error& e);
// Runs `body`, turning a dnnl::error into macer::Error naming `what`.
template <class Body>
void guarded(const char* what, Body&& body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    throw_dnnl_error(what, e);
  }
}

}  // namespace macer::kernels::cpu::dnnl_plan

#endif
