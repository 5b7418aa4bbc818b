// CPU linear layer (kernels/linear.h): y = x W^T + b, dx += dy W, dW += dy^T x, db += column sums
// of dy. fp32: a row-major sgemm (kernels/cpu/sgemm.h); bf16: oneDNN matmuls on bf16 operands
// (one dnnl_plan::Plan per pass), or without oneDNN sgemms of operands rounded to bf16 (emulated).
#include "kernels/linear.h"

#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "kernels/cpu/dnnl_plan.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm.h"

namespace macer::kernels::cpu {

namespace {

enum class Pass { Forward, ForwardBias, Data, Weight };

#ifdef MACER_HAVE_DNNL
using dnnl_plan::matmul_plan;
using dnnl_plan::Plan;
using Kind = Plan::Kind;

// The bf16 plan of one shape and pass, per thread, made on first use.
Plan& bf16_plan(const LinearShape& s, Pass pass) {
  thread_local std::map<std::tuple<int, int, int, int>, std::unique_ptr<Plan>> plans;
  auto key = std::make_tuple(s.n, s.in, s.out, int(pass));
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  if (plans.size() >= 256) plans.clear();
  const int64_t n = s.n, in = s.in, out = s.out;
  std::unique_ptr<Plan> p;
  switch (pass) {
    case Pass::Forward:  // y (n, out) = x (n, in) W^T (in, out)
    case Pass::ForwardBias:
      p = matmul_plan(n, out, in, {in, 1}, {1, in}, out, pass == Pass::ForwardBias, Kind::Out);
      break;
    case Pass::Data:  // dx (n, in) += dy (n, out) W (out, in)
      p = matmul_plan(n, in, out, {out, 1}, {in, 1}, in, false, Kind::Accumulate);
      break;
    case Pass::Weight:  // dW (out, in) += dy^T (out, n) x (n, in)
      p = matmul_plan(out, in, n, {1, out}, {in, 1}, in, false, Kind::Accumulate);
      break;
  }
  return *(plans[key] = std::move(p));
}

void bf16_product(const LinearShape& s, Pass pass, const std::vector<const void*>& data) {
  if (s.n == 0) return;  // nothing to write (forward) or add (backward)
  dnnl_plan::guarded("bf16 linear", [&] { bf16_plan(s, pass).run(data); });
}
#else
// A copy of `count` floats rounded to bf16.
std::vector<float> rounded(const float* data, int64_t count) {
  std::vector<float> r(size_t(count));
  for (int64_t i = 0; i < count; ++i) r[size_t(i)] = round_to_bf16(data[i]);
  return r;
}
#endif

}  // namespace

void linear_forward(const LinearShape& s, const float* x, const float* weight, const float* bias, float* y) {
  if (s.precision == Precision::BF16) {
#ifdef MACER_HAVE_DNNL
    if (bias) return bf16_product(s, Pass::ForwardBias, {x, weight, y, bias});
    return bf16_product(s, Pass::Forward, {x, weight, y});
#else
    const std::vector<float> xr = rounded(x, int64_t(s.n) * s.in), wr = rounded(weight, int64_t(s.out) * s.in);
    return linear_forward(LinearShape{s.n, s.in, s.out}, xr.data(), wr.data(), bias, y);
#endif
  }
  if (bias)
    for (int r = 0; r < s.n; ++r)
      for (int o = 0; o < s.out; ++o) y[int64_t(r) * s.out + o] = bias[o];
  sgemm(false, true, s.n, s.out, s.in, x, s.in, weight, s.in, bias ? 1.0f : 0.0f, y, s.out);
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* weight, float* dx) {
  if (s.precision == Precision::BF16) {
#ifdef MACER_HAVE_DNNL
    return bf16_product(s, Pass::Data, {dy, weight, dx});
#else
    const std::vector<float> dyr = rounded(dy, int64_t(s.n) * s.out), wr = rounded(weight, int64_t(s.out) * s.in);
    return linear_backward_data(LinearShape{s.n, s.in, s.out}, dyr.data(), wr.data(), dx);
#endif
  }
  sgemm(false, false, s.n, s.in, s.out, dy, s.out, weight, s.in, 1.0f, dx, s.in);
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dweight) {
  if (s.precision == Precision::BF16) {
#ifdef MACER_HAVE_DNNL
    return bf16_product(s, Pass::Weight, {dy, x, dweight});
#else
    const std::vector<float> xr = rounded(x, int64_t(s.n) * s.in), dyr = rounded(dy, int64_t(s.n) * s.out);
    return linear_backward_weight(LinearShape{s.n, s.in, s.out}, xr.data(), dyr.data(), dweight);
#endif
  }
  sgemm(true, false, s.out, s.in, s.n, dy, s.out, x, s.in, 1.0f, dweight, s.in);
}

// db[o] += sum over rows of dy[r][o]: blocks of columns over the threads, rows summed in order
// (float32 in either precision).
void linear_backward_bias(const LinearShape& s, const float* dy, float* dbias) {
  parallel_for(s.out, s.n, [&](int64_t o0, int64_t o1) {
    for (int r = 0; r < s.n; ++r)
      for (int64_t o = o0; o < o1; ++o) dbias[o] += dy[int64_t(r) * s.out + o];
  });
}

}  // namespace macer::kernels::cpu
