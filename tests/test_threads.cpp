// The CPU kernels that run on several threads (kernels/cpu/parallel.h users) give the same bits
// with one thread as with several: each sums in an order fixed by the shape alone.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <vector>

#include "gradcheck.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/macer_loss.h"
#include "kernels/memory_format.h"
#include "kernels/noisy_copies.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace macer;
using namespace macer::testing;

namespace {

std::vector<float> copy_of(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

// Runs `fill` (which writes its outputs into the vector it returns) with 1 thread and with 3,
// and requires the two results to be equal bit for bit.
void same_bits(const char* what, const std::function<std::vector<float>()>& fill) {
#ifdef _OPENMP
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<float> one = fill();
  omp_set_num_threads(3);
  std::vector<float> many = fill();
  omp_set_num_threads(before);
  INFO(what);
  REQUIRE(one.size() == many.size());
  CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
#else
  (void)fill;
  WARN(what << ": built without OpenMP, the kernels run on one thread");
#endif
}

}  // namespace

TEST_CASE("threaded CPU kernels give the same bits with one thread and with several", "[threads]") {
  same_bits("noisy copies", [] {
    Tensor x = random_tensor({16, 3, 32, 32}, 1), y = Tensor::empty({16 * 8, 3, 32, 32});
    kernels::cpu::noisy_copies({16, 8, 3 * 32 * 32}, x.data(), 0.25f, 7, 3, y.data());
    return copy_of(y);
  });
  for (const bool last : {false, true})
    same_bits(last ? "batch norm forward (training) and backward, channels-last"
                   : "batch norm forward (training) and backward",
              [last] {
      kernels::BatchNormShape s{24, 16, 17 * 19};
      s.channels_last = last;
      Tensor x = random_tensor({24, 16, 17, 19}, 2), dy = random_tensor({24, 16, 17, 19}, 3);
      Tensor g = random_tensor({16}, 4), b = random_tensor({16}, 5), rm = random_tensor({16}, 6);
      Tensor rv = random_tensor({16}, 7, 0.5f, 2.0f), y = Tensor::empty(x.shape()), dx = random_tensor(x.shape(), 8);
      Tensor mean = Tensor::empty({16}), invstd = Tensor::empty({16}), dg = random_tensor({16}, 9);
      Tensor db = random_tensor({16}, 10);
      kernels::cpu::batchnorm_forward_train(s, x.data(), g.data(), b.data(), rm.data(), rv.data(), y.data(),
                                            mean.data(), invstd.data());
      kernels::cpu::batchnorm_backward(s, dy.data(), x.data(), g.data(), mean.data(), invstd.data(), dx.data(),
                                       dg.data(), db.data());
      std::vector<float> out = copy_of(y);
      for (const Tensor* t : {&rm, &rv, &mean, &invstd, &dx, &dg, &db}) {
        std::vector<float> v = copy_of(*t);
        out.insert(out.end(), v.begin(), v.end());
      }
      return out;
    });
  same_bits("reorders to and from channels-last, one image and several", [] {
    std::vector<float> out;
    for (int64_t n : {1, 9}) {
      Tensor x = random_tensor({n, 24, 17, 19}, 30);
      std::vector<float> last(size_t(x.numel())), back(size_t(x.numel()), 1.0f);
      kernels::cpu::to_channels_last(n, 24, 17 * 19, x.data(), last.data());
      kernels::cpu::to_contiguous(n, 24, 17 * 19, last.data(), back.data(), true);
      out.insert(out.end(), last.begin(), last.end());
      out.insert(out.end(), back.begin(), back.end());
    }
    return out;
  });
  same_bits("max pooling (2x2 and 3x3 stride 2 pad 1), forward and backward", [] {
    std::vector<float> out;
    for (const kernels::Pool2dShape& s : {kernels::Pool2dShape{32, 20, 24, 24, 2, 2, 0},
                                          kernels::Pool2dShape{32, 20, 23, 21, 3, 2, 1}}) {
      Tensor x = random_tensor({s.n, s.c, s.h, s.w}, 11), y = Tensor::empty({s.n, s.c, s.out_h(), s.out_w()});
      Tensor idx = Tensor::empty(y.shape(), Device::CPU, DType::I32), dx = random_tensor(x.shape(), 12);
      kernels::cpu::maxpool_forward(s, x.data(), y.data(), idx.data<int32_t>());
      kernels::cpu::maxpool_backward(s, y.data(), idx.data<int32_t>(), dx.data());
      std::vector<float> a = copy_of(y), b = copy_of(dx);
      out.insert(out.end(), a.begin(), a.end());
      out.insert(out.end(), b.begin(), b.end());
    }
    return out;
  });
  same_bits("convolutions, forward and the three backwards (unfolding and oneDNN shapes)", [] {
    std::vector<float> out;
    for (const kernels::Conv2dShape& s : {kernels::Conv2dShape{96, 20, 12, 12, 50, 5, 5, 1, 0},
                                          kernels::Conv2dShape{64, 1, 28, 28, 20, 5, 5, 1, 0},
                                          kernels::Conv2dShape{8, 16, 32, 32, 16, 3, 3, 1, 1}}) {
      Tensor x = random_tensor({s.n, s.c, s.h, s.w}, 13), w = random_tensor({s.k, s.c, s.r, s.s}, 14);
      Tensor b = random_tensor({s.k}, 15), y = Tensor::empty({s.n, s.k, s.out_h(), s.out_w()});
      Tensor dx = random_tensor(x.shape(), 16), dw = random_tensor(w.shape(), 17), db = random_tensor({s.k}, 18);
      kernels::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
      kernels::cpu::conv2d_backward(s, x.data(), y.data(), w.data(), dx.data(), dw.data(), db.data());
      for (const Tensor* t : {&y, &dx, &dw, &db}) {
        std::vector<float> v = copy_of(*t);
        out.insert(out.end(), v.begin(), v.end());
      }
    }
    return out;
  });
  same_bits("relu, add, SGD", [] {
    const int64_t n = 300001;
    Tensor a = random_tensor({n}, 19), b = random_tensor({n}, 20), y = Tensor::empty({n}), d = random_tensor({n}, 21);
    Tensor buf = random_tensor({n}, 22);
    kernels::cpu::relu_forward(n, a.data(), y.data());
    kernels::cpu::relu_backward(n, y.data(), b.data(), d.data());
    kernels::cpu::add_forward(n, a.data(), d.data(), b.data());
    kernels::cpu::sgd_step(kernels::SgdParams{}, n, b.data(), a.data(), buf.data());
    std::vector<float> out = copy_of(y), v = copy_of(d), w = copy_of(b), u = copy_of(buf);
    for (auto* part : {&v, &w, &u}) out.insert(out.end(), part->begin(), part->end());
    return out;
  });
  same_bits("MACER objective, forward and backward", [] {
    const int B = 64, k = 16, C = 10;
    Tensor z = random_tensor({B * k, C}, 23, -3.0f, 3.0f), dz = random_tensor({B * k, C}, 24);
    std::vector<int32_t> y(B);
    for (int i = 0; i < B; ++i) y[size_t(i)] = (i * 7) % C;
    std::vector<float> loss(1), cl(B), rl(B), p_label(B), q1(B), q2(B), active(B);
    std::vector<int32_t> c1(B), c2(B);
    kernels::MacerSaved saved{p_label.data(), q1.data(), q2.data(), c1.data(), c2.data(), active.data()};
    const kernels::MacerLossParams p{B, k, C, 0.25f, 12.0f, 16.0f, 8.0f};
    const float dloss = 1.0f;
    kernels::cpu::macer_loss_forward(p, z.data(), y.data(), loss.data(), cl.data(), rl.data(), saved);
    kernels::cpu::macer_loss_backward(p, z.data(), y.data(), saved, &dloss, dz.data());
    std::vector<float> out = copy_of(dz);
    for (auto* part : {&loss, &cl, &rl, &p_label, &q1, &q2, &active}) out.insert(out.end(), part->begin(), part->end());
    return out;
  });
}
