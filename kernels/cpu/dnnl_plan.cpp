// kernels/cpu/dnnl_plan.h: the plan's operands, their scratch, and one run (bind, reorder in,
// execute, reorder or accumulate out) on the thread's oneDNN stream.
#include "kernels/cpu/dnnl_plan.h"

#ifdef MACER_HAVE_DNNL

#include <string>

#include "kernels/check.h"
#include "kernels/elementwise.h"

namespace macer::kernels::cpu::dnnl_plan {

namespace {

void* slot_buffer(Slot slot, size_t bytes) {
  thread_local std::vector<float> buffers[kSlots];
  std::vector<float>& b = buffers[slot];
  if (b.size() * sizeof(float) < bytes) b.resize((bytes + sizeof(float) - 1) / sizeof(float));
  return b.data();
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream st(cpu_engine());
  return st;
}

dnnl::reorder make_reorder(const memory& from, const memory& to, bool add) {
  dnnl::primitive_attr attr;
  if (add) {  // to = from + to
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  return dnnl::reorder(dnnl::reorder::primitive_desc(from, to, attr));
}

}  // namespace

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

memory::data_type operand_type(Precision p) {
  return p == Precision::BF16 ? memory::data_type::bf16 : memory::data_type::f32;
}

void throw_dnnl_error(const char* what, const dnnl::error& e) {
  throw Error("oneDNN " + std::string(what) + ": " + e.what() + " (status " + std::to_string(int(e.status)) + ")");
}

void Plan::add(int arg, Kind kind, Slot slot, const memory::desc& user, const memory::desc& want) {
  size_t elements = 1;  // dense (no gaps between rows): the loop adds every float of the buffer
  for (int i = 0; i < user.data.ndims; ++i) elements *= size_t(user.data.dims[i]);
  const bool add_in_place = kind == Kind::Accumulate && want == user && user.data_type() == memory::data_type::f32 &&
                            user.get_size() == elements * sizeof(float);
  Operand op{arg,
             kind,
             slot,
             memory(user, cpu_engine(), DNNL_MEMORY_NONE),
             memory(want, cpu_engine(), DNNL_MEMORY_NONE),
             want == user && kind != Kind::Accumulate,
             add_in_place,
             {}};
  if (!op.same && !op.add_in_place)
    op.move = kind == Kind::In ? make_reorder(op.user, op.inner, false)
                               : make_reorder(op.inner, op.user, kind == Kind::Accumulate);
  operands.push_back(std::move(op));
}

void Plan::run(const std::vector<const void*>& data, const std::unordered_map<int, memory>& ready,
               const std::unordered_map<int, void*>& place) {
  MACER_CHECK(data.size() == operands.size(), "oneDNN plan: " << data.size() << " pointers for "
                                                               << operands.size() << " operands");
  dnnl::stream& st = cpu_stream();
  std::unordered_map<int, memory> args;
  for (size_t i = 0; i < operands.size(); ++i) {
    Operand& op = operands[i];
    void* p = const_cast<void*>(data[i]);
    op.user.set_data_handle(p);
    auto r = op.kind == Kind::In ? ready.find(op.arg) : ready.end();
    if (r != ready.end()) {
      MACER_CHECK(r->second.get_desc() == op.inner.get_desc(), "oneDNN plan: a ready operand in another layout");
      op.inner.set_data_handle(r->second.get_data_handle());
    } else {
      auto at = op.kind == Kind::In && !op.same ? place.find(op.arg) : place.end();
      op.inner.set_data_handle(op.same            ? p
                               : at != place.end() ? at->second
                                                   : slot_buffer(op.slot, op.inner.get_desc().get_size()));
      if (op.kind == Kind::In && !op.same) op.move.execute(st, op.user, op.inner);
    }
    args.emplace(op.arg, op.inner);
  }
  primitive.execute(st, args);
  for (Operand& op : operands)
    if (op.kind != Kind::In && !op.same && !op.add_in_place) op.move.execute(st, op.inner, op.user);
  st.wait();
  for (Operand& op : operands)
    if (op.add_in_place)
      accumulate(int64_t(op.user.get_desc().get_size() / sizeof(float)),
                 static_cast<const float*>(op.inner.get_data_handle()), static_cast<float*>(op.user.get_data_handle()));
}

namespace {
// The dense strides of a (K, N) matrix in the order of `strides` (row- or column-major).
memory::dims b_dense(int64_t K, int64_t N, const memory::dims& strides) {
  return strides[0] >= strides[1] ? memory::dims{N, 1} : memory::dims{1, K};
}
}  // namespace

std::unique_ptr<Plan> matmul_plan(int64_t M, int64_t N, int64_t K, memory::dims a_strides, memory::dims b_strides,
                                  int64_t ldc, bool bias, Plan::Kind out, bool b_as_given, bool given_bf16) {
  using dt = memory::data_type;
  const dt given = given_bf16 ? dt::bf16 : dt::f32;
  const memory::desc a_user({M, K}, given, a_strides), b_user({K, N}, given, b_strides);
  const memory::desc c_user({M, N}, dt::f32, memory::dims{ldc, 1});
  const memory::desc bias_md = bias ? memory::desc({1, N}, dt::f32, memory::format_tag::ab) : memory::desc();
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(memory::desc({M, K}, dt::bf16, memory::format_tag::ab),
                                                     b_as_given ? memory::desc({K, N}, dt::bf16, b_dense(K, N, b_strides))
                                                                : memory::desc({K, N}, dt::bf16, memory::format_tag::any),
                                                     bias_md,
                                                     c_user),
                                  cpu_engine());
  auto p = std::make_unique<Plan>();
  p->primitive = dnnl::matmul(pd);
  p->add(DNNL_ARG_SRC, Plan::Kind::In, kSrc, a_user, pd.src_desc());
  p->add(DNNL_ARG_WEIGHTS, Plan::Kind::In, kWei, b_user, pd.weights_desc());
  p->add(DNNL_ARG_DST, out, kDst, c_user, pd.dst_desc());
  if (bias) p->add(DNNL_ARG_BIAS, Plan::Kind::In, kDst, bias_md, bias_md);  // f32, read in place
  return p;
}

size_t Plan::inner_bytes(int arg) const {
  for (const Operand& op : operands)
    if (op.arg == arg) return op.same ? 0 : op.inner.get_desc().get_size();
  throw Error("oneDNN plan: no operand " + std::to_string(arg));
}

const memory& Plan::inner(int arg) const {
  for (const Operand& op : operands)
    if (op.arg == arg) return op.inner;
  throw Error("oneDNN plan: no operand " + std::to_string(arg));
}

}  // namespace macer::kernels::cpu::dnnl_plan

#endif
