// oneDNN convolution for the CPU (kernels/cpu/conv2d_dnnl.h): direct fp32 kernels on oneDNN's
// blocked layouts, with reorders from and to the engine's NCHW/OIHW tensors around each call.
#include "kernels/cpu/conv2d_dnnl.h"

#include "kernels/check.h"

#ifdef MACER_HAVE_DNNL

#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace macer::kernels::cpu::dnnl_conv {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr memory::data_type f32 = memory::data_type::f32;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Buffers for tensors in the primitives' layouts, one per role and per thread, shared by every
// shape (a thread runs one call at a time), grown to the largest size asked for.
enum Role { kSrc, kWei, kDst, kCount };
float* role_buffer(Role role, size_t bytes) {
  thread_local std::vector<float> buffers[kCount];
  std::vector<float>& b = buffers[role];
  if (b.size() * sizeof(float) < bytes) b.resize((bytes + sizeof(float) - 1) / sizeof(float));
  return b.data();
}

// A tensor as the engine holds it (`user`, plain layout) and as a primitive wants it (`inner`,
// maybe blocked); `same` when the layouts agree and the primitive can use the user's memory.
struct Operand {
  memory user, inner;
  bool same = true;
  Role role = kSrc;
  Operand() = default;
  Operand(const memory::desc& user_md, const memory::desc& want, Role r, bool force_copy = false)
      : user(user_md, cpu_engine(), DNNL_MEMORY_NONE), inner(want, cpu_engine(), DNNL_MEMORY_NONE),
        same(want == user_md && !force_copy), role(r) {}
  // Points the primitive side at the user's data or at this role's buffer.
  void bind(const float* data) {
    user.set_data_handle(const_cast<float*>(data));
    inner.set_data_handle(same ? const_cast<float*>(data) : role_buffer(role, inner.get_desc().get_size()));
  }
};

dnnl::reorder make_reorder(const memory& from, const memory& to, bool add) {
  dnnl::primitive_attr attr;
  if (add) {  // to = from + to: the backward kernels accumulate into the engine's gradients
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  return dnnl::reorder(dnnl::reorder::primitive_desc(from, to, attr));
}

struct Descs {
  memory::dims stride, pad;
  memory::desc src_any, wei_any, dst_any, src_user, wei_user, dst_user;
  explicit Descs(const Conv2dShape& s)
      : stride{s.stride, s.stride}, pad{s.pad, s.pad},
        src_any({s.n, s.c, s.h, s.w}, f32, tag::any), wei_any({s.k, s.c, s.r, s.s}, f32, tag::any),
        dst_any({s.n, s.k, s.out_h(), s.out_w()}, f32, tag::any), src_user({s.n, s.c, s.h, s.w}, f32, tag::nchw),
        wei_user({s.k, s.c, s.r, s.s}, f32, tag::oihw), dst_user({s.n, s.k, s.out_h(), s.out_w()}, f32, tag::nchw) {}
  dnnl::convolution_forward::primitive_desc forward_pd(const memory::desc& bias_md) const {
    return {dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                            src_any, wei_any, bias_md, dst_any, stride, pad, pad),
            cpu_engine()};
  }
};

// Forward: y = conv(x, w) + b, reordered out into the engine's NCHW y.
struct ForwardPlan {
  dnnl::convolution_forward conv;
  Operand src, wei, dst;
  memory bias;
  dnnl::reorder src_in, wei_in, dst_out;
  ForwardPlan(const Descs& d, bool with_bias, int k) {
    const memory::desc bias_md = with_bias ? memory::desc({k}, f32, tag::x) : memory::desc();
    auto pd = d.forward_pd(bias_md);
    conv = dnnl::convolution_forward(pd);
    src = Operand(d.src_user, pd.src_desc(), kSrc);
    wei = Operand(d.wei_user, pd.weights_desc(), kWei);
    dst = Operand(d.dst_user, pd.dst_desc(), kDst);
    if (with_bias) bias = memory(bias_md, cpu_engine(), DNNL_MEMORY_NONE);
    if (!src.same) src_in = make_reorder(src.user, src.inner, false);
    if (!wei.same) wei_in = make_reorder(wei.user, wei.inner, false);
    if (!dst.same) dst_out = make_reorder(dst.inner, dst.user, false);
  }
};

// Backward data: dx += conv_transpose(dy, w); diff_src always lands in our buffer first.
struct BackwardDataPlan {
  dnnl::convolution_backward_data conv;
  Operand ddst, wei, dsrc;
  dnnl::reorder ddst_in, wei_in, dsrc_add;
  explicit BackwardDataPlan(const Descs& d) {
    auto hint = d.forward_pd(memory::desc());
    dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.dst_any,
                                              d.stride, d.pad, d.pad),
        cpu_engine(), hint);
    conv = dnnl::convolution_backward_data(pd);
    ddst = Operand(d.dst_user, pd.diff_dst_desc(), kDst);
    wei = Operand(d.wei_user, pd.weights_desc(), kWei);
    dsrc = Operand(d.src_user, pd.diff_src_desc(), kSrc, true);
    if (!ddst.same) ddst_in = make_reorder(ddst.user, ddst.inner, false);
    if (!wei.same) wei_in = make_reorder(wei.user, wei.inner, false);
    dsrc_add = make_reorder(dsrc.inner, dsrc.user, true);
  }
};

// Backward weights: dw += correlation(x, dy); diff_weights always lands in our buffer first.
struct BackwardWeightPlan {
  dnnl::convolution_backward_weights conv;
  Operand src, ddst, dwei;
  dnnl::reorder src_in, ddst_in, dwei_add;
  explicit BackwardWeightPlan(const Descs& d) {
    auto hint = d.forward_pd(memory::desc());
    dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any,
                                                 d.dst_any, d.stride, d.pad, d.pad),
        cpu_engine(), hint);
    conv = dnnl::convolution_backward_weights(pd);
    src = Operand(d.src_user, pd.src_desc(), kSrc);
    ddst = Operand(d.dst_user, pd.diff_dst_desc(), kDst);
    dwei = Operand(d.wei_user, pd.diff_weights_desc(), kWei, true);
    if (!src.same) src_in = make_reorder(src.user, src.inner, false);
    if (!ddst.same) ddst_in = make_reorder(ddst.user, ddst.inner, false);
    dwei_add = make_reorder(dwei.inner, dwei.user, true);
  }
};

// The plans of one shape, each made on first use.
struct Plans {
  Descs descs;
  std::unique_ptr<ForwardPlan> fwd[2];  // without, with bias
  std::unique_ptr<BackwardDataPlan> bwd_data;
  std::unique_ptr<BackwardWeightPlan> bwd_weight;
  explicit Plans(const Conv2dShape& s) : descs(s) {}
};

// Plans by shape, per thread (threads that convolve at the same time share nothing here); the
// map is small: one entry per distinct shape, cleared if it ever grows large.
Plans& plans_for(const Conv2dShape& s) {
  thread_local std::map<std::tuple<int, int, int, int, int, int, int, int, int>, std::unique_ptr<Plans>> plans;
  auto key = std::make_tuple(s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad);
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  if (plans.size() >= 256) plans.clear();
  return *(plans[key] = std::make_unique<Plans>(s));
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream st(cpu_engine());
  return st;
}

// Brings a user tensor into the primitive's layout (or lets the primitive read it in place).
void bring_in(dnnl::stream& st, Operand& op, const dnnl::reorder& r, const float* data) {
  op.bind(data);
  if (!op.same) r.execute(st, op.user, op.inner);
}

template <class Body>
void run(const char* what, Body&& body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    MACER_CHECK(false, "oneDNN " << what << ": " << e.what() << " (status " << int(e.status) << ")");
  }
}

}  // namespace

bool built() { return true; }

void forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y) {
  run("convolution forward", [&] {
    Plans& plans = plans_for(s);
    auto& slot = plans.fwd[bias ? 1 : 0];
    if (!slot) slot = std::make_unique<ForwardPlan>(plans.descs, bias != nullptr, s.k);
    ForwardPlan& p = *slot;
    dnnl::stream& st = cpu_stream();
    bring_in(st, p.src, p.src_in, x);
    bring_in(st, p.wei, p.wei_in, weight);
    p.dst.bind(y);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, p.src.inner}, {DNNL_ARG_WEIGHTS, p.wei.inner},
                                         {DNNL_ARG_DST, p.dst.inner}};
    if (bias) {
      p.bias.set_data_handle(const_cast<float*>(bias));
      args.emplace(DNNL_ARG_BIAS, p.bias);
    }
    p.conv.execute(st, args);
    if (!p.dst.same) p.dst_out.execute(st, p.dst.inner, p.dst.user);
    st.wait();
  });
}

void backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  run("convolution backward data", [&] {
    Plans& plans = plans_for(s);
    if (!plans.bwd_data) plans.bwd_data = std::make_unique<BackwardDataPlan>(plans.descs);
    BackwardDataPlan& p = *plans.bwd_data;
    dnnl::stream& st = cpu_stream();
    bring_in(st, p.ddst, p.ddst_in, dy);
    bring_in(st, p.wei, p.wei_in, weight);
    p.dsrc.bind(dx);
    p.conv.execute(st, {{DNNL_ARG_DIFF_DST, p.ddst.inner}, {DNNL_ARG_WEIGHTS, p.wei.inner},
                        {DNNL_ARG_DIFF_SRC, p.dsrc.inner}});
    p.dsrc_add.execute(st, p.dsrc.inner, p.dsrc.user);  // dx += diff_src
    st.wait();
  });
}

void backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  run("convolution backward weights", [&] {
    Plans& plans = plans_for(s);
    if (!plans.bwd_weight) plans.bwd_weight = std::make_unique<BackwardWeightPlan>(plans.descs);
    BackwardWeightPlan& p = *plans.bwd_weight;
    dnnl::stream& st = cpu_stream();
    bring_in(st, p.src, p.src_in, x);
    bring_in(st, p.ddst, p.ddst_in, dy);
    p.dwei.bind(dweight);
    p.conv.execute(st, {{DNNL_ARG_SRC, p.src.inner}, {DNNL_ARG_DIFF_DST, p.ddst.inner},
                        {DNNL_ARG_DIFF_WEIGHTS, p.dwei.inner}});
    p.dwei_add.execute(st, p.dwei.inner, p.dwei.user);  // dweight += diff_weights
    st.wait();
  });
}

void backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight, float* dx,
              float* dweight) {
  if (!dx || !dweight) {
    if (dx) backward_data(s, dy, weight, dx);
    if (dweight) backward_weight(s, x, dy, dweight);
    return;
  }
  run("convolution backward", [&] {
    Plans& plans = plans_for(s);
    if (!plans.bwd_data) plans.bwd_data = std::make_unique<BackwardDataPlan>(plans.descs);
    if (!plans.bwd_weight) plans.bwd_weight = std::make_unique<BackwardWeightPlan>(plans.descs);
    BackwardDataPlan& d = *plans.bwd_data;
    BackwardWeightPlan& w = *plans.bwd_weight;
    dnnl::stream& st = cpu_stream();
    // dy in the layout both want, brought in once (both operands use the kDst buffer); the data
    // pass's kSrc and kWei buffers are consumed before the weights pass overwrites them.
    const bool share = d.ddst.inner.get_desc() == w.ddst.inner.get_desc();
    bring_in(st, d.ddst, d.ddst_in, dy);
    bring_in(st, d.wei, d.wei_in, weight);
    d.dsrc.bind(dx);
    d.conv.execute(st, {{DNNL_ARG_DIFF_DST, d.ddst.inner}, {DNNL_ARG_WEIGHTS, d.wei.inner},
                        {DNNL_ARG_DIFF_SRC, d.dsrc.inner}});
    d.dsrc_add.execute(st, d.dsrc.inner, d.dsrc.user);  // dx += diff_src
    bring_in(st, w.src, w.src_in, x);
    if (share) {
      w.ddst.bind(dy);
      w.ddst.inner.set_data_handle(d.ddst.inner.get_data_handle());
    } else {
      bring_in(st, w.ddst, w.ddst_in, dy);
    }
    w.dwei.bind(dweight);
    w.conv.execute(st, {{DNNL_ARG_SRC, w.src.inner}, {DNNL_ARG_DIFF_DST, w.ddst.inner},
                        {DNNL_ARG_DIFF_WEIGHTS, w.dwei.inner}});
    w.dwei_add.execute(st, w.dwei.inner, w.dwei.user);  // dweight += diff_weights
    st.wait();
  });
}

}  // namespace macer::kernels::cpu::dnnl_conv

#else  // no oneDNN in this build: kernels/cpu/conv2d.cpp always takes the reference

namespace macer::kernels::cpu::dnnl_conv {
bool built() { return false; }
void forward(const Conv2dShape&, const float*, const float*, const float*, float*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
void backward_data(const Conv2dShape&, const float*, const float*, float*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
void backward_weight(const Conv2dShape&, const float*, const float*, float*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
void backward(const Conv2dShape&, const float*, const float*, const float*, float*, float*) {
  MACER_CHECK(false, "this build has no oneDNN");
}
}  // namespace macer::kernels::cpu::dnnl_conv

#endif
