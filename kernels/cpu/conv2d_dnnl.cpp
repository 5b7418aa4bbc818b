// oneDNN convolution for the CPU (kernels/cpu/conv2d_dnnl.h): direct kernels on oneDNN's blocked
// layouts in fp32 or bf16 (products of bf16 operands accumulated in fp32, results fp32 or, for
// bf16 activations, bf16), one dnnl_plan::Plan per pass, reorders from and to the engine's tensors.
#include "kernels/cpu/conv2d_dnnl.h"

#include "kernels/check.h"

#ifdef MACER_HAVE_DNNL

#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "kernels/cpu/dnnl_plan.h"

namespace macer::kernels::cpu::dnnl_conv {

namespace {

using dnnl::memory;
using dnnl_plan::Plan;
using dnnl_plan::cpu_engine;
using tag = memory::format_tag;
using Kind = Plan::Kind;
constexpr memory::data_type f32 = memory::data_type::f32, bf16 = memory::data_type::bf16;

// The tensors of one shape as oneDNN descriptors: `*_any` let the primitive choose layouts (in
// the precision's operand type), `*_user` are the engine's tensors (float32, x and y bf16 with
// x_bf16 / y_bf16; dx_user and dy_user their float32 gradients): OIHW weights, NCHW
// or NHWC (channels-last) activations.
struct Descs {
  memory::dims stride, pad;
  memory::desc src_any, wei_any, dst_any;              // operands: f32 or bf16
  memory::desc src_f32_any, wei_f32_any, dst_f32_any;  // results: f32
  memory::desc src_user, wei_user, dst_user;  // x, weights, y: y (and x) bf16 with y_bf16 (x_bf16)
  memory::desc dx_user, dy_user;               // the gradients of x and y: float32
  bool y_bf16;
  explicit Descs(const Conv2dShape& s)
      : stride{s.stride, s.stride}, pad{s.pad, s.pad},
        src_any({s.n, s.c, s.h, s.w}, dnnl_plan::operand_type(s.precision), tag::any),
        wei_any({s.k, s.c, s.r, s.s}, dnnl_plan::operand_type(s.precision), tag::any),
        dst_any({s.n, s.k, s.out_h(), s.out_w()}, dnnl_plan::operand_type(s.precision), tag::any),
        src_f32_any({s.n, s.c, s.h, s.w}, f32, tag::any), wei_f32_any({s.k, s.c, s.r, s.s}, f32, tag::any),
        dst_f32_any({s.n, s.k, s.out_h(), s.out_w()}, f32, tag::any),
        src_user({s.n, s.c, s.h, s.w}, s.x_bf16 ? bf16 : f32, s.x_channels_last ? tag::nhwc : tag::nchw),
        wei_user({s.k, s.c, s.r, s.s}, f32, tag::oihw),
        dst_user({s.n, s.k, s.out_h(), s.out_w()}, s.y_bf16 ? bf16 : f32, s.y_channels_last ? tag::nhwc : tag::nchw),
        dx_user({s.n, s.c, s.h, s.w}, f32, s.x_channels_last ? tag::nhwc : tag::nchw),
        dy_user({s.n, s.k, s.out_h(), s.out_w()}, f32, s.y_channels_last ? tag::nhwc : tag::nchw),
        y_bf16(s.y_bf16) {}
  // Results (y, dx, dweight) are float32 in either precision (y bf16 with y_bf16); `src`/`dst` below
  // are the operands, so the forward hint that the backward passes need carries the same types.
  dnnl::convolution_forward::primitive_desc forward_pd(const memory::desc& bias_md) const {
    return {dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                            src_any, wei_any, bias_md, y_bf16 ? dst_any : dst_f32_any, stride, pad,
                                            pad),
            cpu_engine()};
  }
};

// Forward: y = conv(x, w) + b; run({x, w, y}) or run({x, w, y, b}).
std::unique_ptr<Plan> forward_plan(const Descs& d, bool with_bias, int k) {
  const memory::desc bias_md = with_bias ? memory::desc({k}, f32, tag::x) : memory::desc();
  auto pd = d.forward_pd(bias_md);
  auto p = std::make_unique<Plan>();
  p->primitive = dnnl::convolution_forward(pd);
  p->add(DNNL_ARG_SRC, Kind::In, dnnl_plan::kSrc, d.src_user, pd.src_desc());
  p->add(DNNL_ARG_WEIGHTS, Kind::In, dnnl_plan::kWei, d.wei_user, pd.weights_desc());
  p->add(DNNL_ARG_DST, Kind::Out, dnnl_plan::kDst, d.dst_user, pd.dst_desc());
  if (with_bias) p->add(DNNL_ARG_BIAS, Kind::In, dnnl_plan::kDst, bias_md, bias_md);  // f32, read in place
  return p;
}

// Backward data: dx += conv_transpose(dy, w), or dx = with `overwrite`; run({dy, w, dx}).
std::unique_ptr<Plan> backward_data_plan(const Descs& d, bool overwrite) {
  auto hint = d.forward_pd(memory::desc());
  dnnl::convolution_backward_data::primitive_desc pd(
      dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, d.src_f32_any, d.wei_any,
                                            d.dst_any, d.stride, d.pad, d.pad),
      cpu_engine(), hint);
  auto p = std::make_unique<Plan>();
  p->primitive = dnnl::convolution_backward_data(pd);
  p->add(DNNL_ARG_DIFF_DST, Kind::In, dnnl_plan::kDst, d.dy_user, pd.diff_dst_desc());
  p->add(DNNL_ARG_WEIGHTS, Kind::In, dnnl_plan::kWei, d.wei_user, pd.weights_desc());
  p->add(DNNL_ARG_DIFF_SRC, overwrite ? Kind::Out : Kind::Accumulate, dnnl_plan::kSrc, d.dx_user, pd.diff_src_desc());
  return p;
}

// Backward weights: dw += correlation(x, dy); run({x, dy, dw}).
std::unique_ptr<Plan> backward_weight_plan(const Descs& d) {
  auto hint = d.forward_pd(memory::desc());
  dnnl::convolution_backward_weights::primitive_desc pd(
      dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_f32_any,
                                               d.dst_any, d.stride, d.pad, d.pad),
      cpu_engine(), hint);
  auto p = std::make_unique<Plan>();
  p->primitive = dnnl::convolution_backward_weights(pd);
  p->add(DNNL_ARG_SRC, Kind::In, dnnl_plan::kSrc, d.src_user, pd.src_desc());
  p->add(DNNL_ARG_DIFF_DST, Kind::In, dnnl_plan::kDst, d.dy_user, pd.diff_dst_desc());
  p->add(DNNL_ARG_DIFF_WEIGHTS, Kind::Accumulate, dnnl_plan::kWei, d.wei_user, pd.diff_weights_desc());
  return p;
}

// The plans of one shape and precision, each made on first use.
struct Plans {
  Descs descs;
  std::unique_ptr<Plan> fwd[2];  // without, with bias
  std::unique_ptr<Plan> bwd_data, bwd_weight;
  memory::desc kept;  // x as a forward with `keep` left it (its layout and type)
  bool overwrite;
  explicit Plans(const Conv2dShape& s) : descs(s), overwrite(s.dx_overwrite) {}
  Plan& forward(bool bias, int k) {
    auto& slot = fwd[bias ? 1 : 0];
    if (!slot) slot = forward_plan(descs, bias, k);
    return *slot;
  }
  Plan& backward_data() {
    if (!bwd_data) bwd_data = backward_data_plan(descs, overwrite);
    return *bwd_data;
  }
  Plan& backward_weight() {
    if (!bwd_weight) bwd_weight = backward_weight_plan(descs);
    return *bwd_weight;
  }
};

// Plans by shape, per thread (threads that convolve at the same time share nothing here); the
// map is small: one entry per distinct shape, cleared if it ever grows large.
Plans& plans_for(const Conv2dShape& s) {
  thread_local std::map<std::tuple<int, int, int, int, int, int, int, int, int, int, int>, std::unique_ptr<Plans>>
      plans;
  auto key = std::make_tuple(s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad, int(s.precision),
                             int(s.x_channels_last) | int(s.y_channels_last) << 1 | int(s.dx_overwrite) << 2 |
                                 int(s.x_bf16) << 3 | int(s.y_bf16) << 4);
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  if (plans.size() >= 256) plans.clear();
  return *(plans[key] = std::make_unique<Plans>(s));
}

}  // namespace

bool built() { return true; }

size_t kept_input_bytes(const Conv2dShape& s, bool bias) {
  size_t bytes = 0;
  dnnl_plan::guarded("convolution forward", [&] { bytes = plans_for(s).forward(bias, s.k).inner_bytes(DNNL_ARG_SRC); });
  return bytes;
}

void forward(const Conv2dShape& s, const void* x, const float* weight, const float* bias, void* y, void* keep) {
  dnnl_plan::guarded("convolution forward", [&] {
    Plans& plans = plans_for(s);
    Plan& p = plans.forward(bias != nullptr, s.k);
    std::unordered_map<int, void*> place;
    if (keep) {
      place[DNNL_ARG_SRC] = keep;
      plans.kept = p.inner(DNNL_ARG_SRC).get_desc();
    }
    if (bias)
      p.run({x, weight, y, bias}, {}, place);
    else
      p.run({x, weight, y}, {}, place);
  });
}

void backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  dnnl_plan::guarded("convolution backward data", [&] { plans_for(s).backward_data().run({dy, weight, dx}); });
}

void backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  dnnl_plan::guarded("convolution backward weights",
                     [&] { plans_for(s).backward_weight().run({x, dy, dweight}); });
}

void backward(const Conv2dShape& s, const void* x, const float* dy, const float* weight, float* dx,
              float* dweight, const void* kept) {
  if (!dx && !dweight) return;
  dnnl_plan::guarded("convolution backward", [&] {
    memory::desc as_kept;  // x as the forward kept it: that forward's plans (its shape without the
    if (kept) {            // backward's dx_overwrite), copied before another lookup may clear them
      Conv2dShape f = s;
      f.dx_overwrite = false;
      as_kept = plans_for(f).kept;
    }
    Plans& plans = plans_for(s);
    std::unordered_map<int, memory> ready;
    if (dx) {
      Plan& d = plans.backward_data();
      d.run({dy, weight, dx});
      if (!dweight) return;
      // dy brought in once when both passes want it in the same layout (it sits in the kDst
      // slot, which the weights pass does not otherwise touch).
      const memory& dy_in = d.inner(DNNL_ARG_DIFF_DST);
      if (dy_in.get_desc() == plans.backward_weight().inner(DNNL_ARG_DIFF_DST).get_desc())
        ready.emplace(DNNL_ARG_DIFF_DST, dy_in);
    }
    Plan& w = plans.backward_weight();
    // x as the forward brought it in, when the weights pass wants that layout and type
    if (kept && as_kept == w.inner(DNNL_ARG_SRC).get_desc())
      ready.emplace(DNNL_ARG_SRC, memory(as_kept, cpu_engine(), const_cast<void*>(kept)));
    w.run({x, dy, dweight}, ready);
  });
}

}  // namespace macer::kernels::cpu::dnnl_conv

#else  // no oneDNN in this build: kernels/cpu/conv2d.cpp always takes the reference

namespace macer::kernels::cpu::dnnl_conv {
bool built() { return false; }
size_t kept_input_bytes(const Conv2dShape&, bool) { return 0; }
void forward(const Conv2dShape&, const void*, const float*, const float*, void*, void*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
void backward_data(const Conv2dShape&, const float*, const float*, float*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
void backward_weight(const Conv2dShape&, const float*, const float*, float*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
void backward(const Conv2dShape&, const void*, const float*, const float*, float*, float*, const void*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
}  // namespace macer::kernels::cpu::dnnl_conv

#endif
