// CPU-vs-CUDA parity of the layer kernels: convolution, linear, batch norm, elementwise ops,
// pooling, input normalization and SGD, on fresh random inputs at several (odd, strided, padded) sizes.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "parity_util.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/normalize.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"

bool macer_tests_need_cuda = true;

namespace {

using namespace macer::parity;
namespace kc = macer::kernels::cpu;
namespace kg = macer::kernels::cuda;
namespace k = macer::kernels;

}  // namespace

// Against the plain CPU reference (cpu::ref, im2col + sgemm), the oracle; test_conv checks the
// CPU fast path against the same reference.
TEST_CASE("conv2d forward and backward: CUDA matches CPU", "[cuda][conv]") {
  struct Case {
    k::Conv2dShape s;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 3, 7, 7, 4, 3, 3, 1, 1}, true},     {{3, 5, 9, 11, 6, 3, 3, 2, 1}, false},
      {{1, 1, 5, 5, 1, 5, 5, 1, 0}, true},     {{4, 16, 8, 8, 32, 1, 1, 2, 0}, false},
      {{2, 2, 6, 6, 3, 3, 3, 1, 0}, true},     {{5, 3, 13, 13, 8, 3, 3, 2, 1}, true},
      {{8, 16, 16, 16, 16, 3, 3, 1, 1}, false}};
  for (const Case& c : cases) {
    const k::Conv2dShape& s = c.s;
    INFO("conv " << s.n << "x" << s.c << "x" << s.h << "x" << s.w << " -> " << s.k << " (" << s.r
                 << "x" << s.s << ", stride " << s.stride << ", pad " << s.pad << ")");
    const Shape ys{s.n, s.k, s.out_h(), s.out_w()};
    Tensor x = randn({s.n, s.c, s.h, s.w}), w = randn({s.k, s.c, s.r, s.s}, 0.5f);
    Tensor b = randn({s.k}), dy = randn(ys);
    Tensor gx = gpu(x), gw = gpu(w), gb = gpu(b), gdy = gpu(dy);

    Tensor y = Tensor::empty(ys), gy = Tensor::empty(ys, Device::CUDA);
    kc::ref::conv2d_forward(s, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data());
    kg::conv2d_forward(s, gx.data(), gw.data(), c.bias ? gb.data() : nullptr, gy.data());
    expect_close(gy, y, 1e-4f, 1e-4f, "conv forward");

    // Backward accumulates: start from non-zero gradients.
    Tensor dx = randn(x.shape()), dw = randn(w.shape()), db = randn(b.shape());
    Tensor gdx = gpu(dx), gdw = gpu(dw), gdb = gpu(db);
    kc::ref::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    kg::conv2d_backward_data(s, gdy.data(), gw.data(), gdx.data());
    expect_close(gdx, dx, 1e-4f, 1e-4f, "conv backward data");
    kc::ref::conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
    kg::conv2d_backward_weight(s, gx.data(), gdy.data(), gdw.data());
    expect_close(gdw, dw, 1e-4f, 1e-4f, "conv backward weight");
    kc::ref::conv2d_backward_bias(s, dy.data(), db.data());
    kg::conv2d_backward_bias(s, gdy.data(), gdb.data());
    expect_close(gdb, db, 1e-4f, 1e-4f, "conv backward bias");
  }
}

TEST_CASE("linear forward and backward: CUDA matches CPU", "[cuda][linear]") {
  const std::vector<k::LinearShape> shapes = {{5, 7, 3}, {64, 800, 500}, {1, 10, 10}, {33, 17, 9}};
  for (const k::LinearShape& s : shapes) {
    for (bool bias : {true, false}) {
      INFO("linear " << s.n << "x" << s.in << " -> " << s.out << (bias ? " with bias" : ""));
      Tensor x = randn({s.n, s.in}), w = randn({s.out, s.in}, 0.1f), b = randn({s.out});
      Tensor dy = randn({s.n, s.out});
      Tensor gx = gpu(x), gw = gpu(w), gb = gpu(b), gdy = gpu(dy);
      Tensor y = Tensor::empty({s.n, s.out}), gy = Tensor::empty({s.n, s.out}, Device::CUDA);
      kc::linear_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
      kg::linear_forward(s, gx.data(), gw.data(), bias ? gb.data() : nullptr, gy.data());
      expect_close(gy, y, 1e-4f, 1e-4f, "linear forward");

      Tensor dx = randn(x.shape()), dw = randn(w.shape()), db = randn(b.shape());
      Tensor gdx = gpu(dx), gdw = gpu(dw), gdb = gpu(db);
      kc::linear_backward_data(s, dy.data(), w.data(), dx.data());
      kg::linear_backward_data(s, gdy.data(), gw.data(), gdx.data());
      expect_close(gdx, dx, 1e-4f, 1e-4f, "linear backward data");
      kc::linear_backward_weight(s, x.data(), dy.data(), dw.data());
      kg::linear_backward_weight(s, gx.data(), gdy.data(), gdw.data());
      expect_close(gdw, dw, 1e-4f, 1e-4f, "linear backward weight");
      kc::linear_backward_bias(s, dy.data(), db.data());
      kg::linear_backward_bias(s, gdy.data(), gdb.data());
      expect_close(gdb, db, 1e-4f, 1e-4f, "linear backward bias");
    }
  }
}

TEST_CASE("batch norm train, eval and backward: CUDA matches CPU", "[cuda][batchnorm]") {
  const std::vector<k::BatchNormShape> shapes = {{4, 3, 25},  {2, 16, 64},   {7, 5, 1},
                                                 {3, 2, 221}, {64, 4, 1024}, {1, 3, 1000}};
  for (const k::BatchNormShape& s : shapes) {
    INFO("batch norm n " << s.n << ", c " << s.c << ", hw " << s.hw);
    const Shape xs{s.n, s.c, s.hw}, cs{s.c};
    Tensor x = randn(xs, 2.0f, 3.0f), gamma = randn(cs, 0.5f, 1.0f), beta = randn(cs);
    Tensor rm = randn(cs), rv = randn(cs, 0.2f, 1.0f);
    Tensor gx = gpu(x), ggamma = gpu(gamma), gbeta = gpu(beta), grm = gpu(rm), grv = gpu(rv);

    Tensor y = Tensor::empty(xs), gy = Tensor::empty(xs, Device::CUDA);
    Tensor mean = Tensor::empty(cs), invstd = Tensor::empty(cs);
    Tensor gmean = Tensor::empty(cs, Device::CUDA), ginvstd = Tensor::empty(cs, Device::CUDA);
    kc::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                y.data(), mean.data(), invstd.data());
    kg::batchnorm_forward_train(s, gx.data(), ggamma.data(), gbeta.data(), grm.data(), grv.data(),
                                gy.data(), gmean.data(), ginvstd.data());
    expect_close(gy, y, 1e-4f, 1e-5f, "bn train y");
    expect_close(gmean, mean, 1e-5f, 1e-6f, "bn save_mean");
    expect_close(ginvstd, invstd, 1e-4f, 1e-6f, "bn save_invstd");
    expect_close(grm, rm, 1e-5f, 1e-6f, "bn running_mean");
    expect_close(grv, rv, 1e-4f, 1e-6f, "bn running_var");

    kc::batchnorm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                               y.data());
    kg::batchnorm_forward_eval(s, gx.data(), ggamma.data(), gbeta.data(), grm.data(), grv.data(),
                               gy.data());
    expect_close(gy, y, 1e-4f, 1e-5f, "bn eval y");

    Tensor dy = randn(xs), dx = randn(xs), dgamma = randn(cs), dbeta = randn(cs);
    Tensor gdy = gpu(dy), gdx = gpu(dx), gdgamma = gpu(dgamma), gdbeta = gpu(dbeta);
    kc::batchnorm_backward(s, dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(),
                           dx.data(), dgamma.data(), dbeta.data());
    kg::batchnorm_backward(s, gdy.data(), gx.data(), ggamma.data(), gmean.data(), ginvstd.data(),
                           gdx.data(), gdgamma.data(), gdbeta.data());
    expect_close(gdx, dx, 1e-3f, 1e-4f, "bn dx");
    expect_close(gdgamma, dgamma, 1e-4f, 1e-4f, "bn dgamma");
    expect_close(gdbeta, dbeta, 1e-4f, 1e-4f, "bn dbeta");
  }
}

TEST_CASE("elementwise ops: CUDA matches CPU exactly", "[cuda][elementwise]") {
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(4097), int64_t(100003)}) {
    INFO("n = " << n);
    Tensor a = randn({n}), b = randn({n}), dy = randn({n}), dx = randn({n});
    Tensor ga = gpu(a), gb = gpu(b), gdy = gpu(dy), gdx = gpu(dx);
    Tensor y = Tensor::empty({n}), gy = Tensor::empty({n}, Device::CUDA);

    kc::relu_forward(n, a.data(), y.data());
    kg::relu_forward(n, ga.data(), gy.data());
    expect_close(gy, y, 0.0f, 0.0f, "relu forward");
    kc::relu_backward(n, y.data(), dy.data(), dx.data());
    kg::relu_backward(n, gy.data(), gdy.data(), gdx.data());
    expect_close(gdx, dx, 0.0f, 0.0f, "relu backward");

    kc::add_forward(n, a.data(), b.data(), y.data());
    kg::add_forward(n, ga.data(), gb.data(), gy.data());
    expect_close(gy, y, 0.0f, 0.0f, "add");
    kc::accumulate(n, a.data(), y.data());
    kg::accumulate(n, ga.data(), gy.data());
    expect_close(gy, y, 0.0f, 0.0f, "accumulate");
    kc::scale(n, -0.37f, y.data());
    kg::scale(n, -0.37f, gy.data());
    expect_close(gy, y, 0.0f, 0.0f, "scale");
    kc::fill(n, 2.5f, y.data());
    kg::fill(n, 2.5f, gy.data());
    expect_close(gy, y, 0.0f, 0.0f, "fill");
  }
}

TEST_CASE("input normalization forward and backward: CUDA matches CPU", "[cuda][normalize]") {
  struct Case { int64_t n; int c; int64_t hw; };
  const std::vector<Case> cases = {{4, 3, 1024}, {7, 1, 784}, {1, 3, 50176}, {3, 8, 5}, {5, 3, 1}};
  for (const Case& cs : cases) {
    INFO("normalize n " << cs.n << ", c " << cs.c << ", hw " << cs.hw);
    k::NormalizeShape s;
    s.n = cs.n, s.c = cs.c, s.hw = cs.hw;
    for (int c = 0; c < cs.c; ++c) s.mean[c] = 0.1f + 0.1f * c, s.std[c] = 0.2f + 0.03f * c;
    const Shape xs{cs.n, cs.c, cs.hw};
    Tensor x = randn(xs, 0.5f, 0.5f), dy = randn(xs), dx = randn(xs);
    Tensor gx = gpu(x), gdy = gpu(dy), gdx = gpu(dx);
    Tensor y = Tensor::empty(xs), gy = Tensor::empty(xs, Device::CUDA);
    kc::normalize_forward(s, x.data(), y.data());
    kg::normalize_forward(s, gx.data(), gy.data());
    expect_close(gy, y, 1e-6f, 1e-7f, "normalize forward");
    kc::normalize_backward(s, dy.data(), dx.data());  // accumulates into random dx
    kg::normalize_backward(s, gdy.data(), gdx.data());
    expect_close(gdx, dx, 1e-6f, 1e-7f, "normalize backward");
  }
}

TEST_CASE("max and average pooling: CUDA matches CPU", "[cuda][pool]") {
  const std::vector<k::Pool2dShape> shapes = {{2, 3, 8, 8, 2, 2, 0},   {1, 2, 7, 7, 2, 2, 0},
                                              {2, 3, 9, 9, 3, 2, 1},   {3, 4, 8, 8, 8, 8, 0},
                                              {2, 2, 7, 5, 3, 1, 1},   {2, 5, 11, 11, 3, 3, 0},
                                              {4, 20, 24, 24, 2, 2, 0}};
  for (const k::Pool2dShape& s : shapes) {
    INFO("pool " << s.n << "x" << s.c << "x" << s.h << "x" << s.w << ", kernel " << s.kernel
                 << ", stride " << s.stride << ", pad " << s.pad);
    const Shape xs{s.n, s.c, s.h, s.w}, ys{s.n, s.c, s.out_h(), s.out_w()};
    Tensor x = randn(xs), dy = randn(ys), dx = randn(xs);
    Tensor gx = gpu(x), gdy = gpu(dy), gdx = gpu(dx);
    Tensor y = Tensor::empty(ys), gy = Tensor::empty(ys, Device::CUDA);
    Tensor am = Tensor::empty(ys, Device::CPU, macer::DType::I32);
    Tensor gam = Tensor::empty(ys, Device::CUDA, macer::DType::I32);

    kc::maxpool_forward(s, x.data(), y.data(), am.data<int32_t>());
    kg::maxpool_forward(s, gx.data(), gy.data(), gam.data<int32_t>());
    expect_close(gy, y, 0.0f, 0.0f, "maxpool forward");
    expect_equal<int32_t>(gam, am, "maxpool argmax");
    kc::maxpool_backward(s, dy.data(), am.data<int32_t>(), dx.data());
    kg::maxpool_backward(s, gdy.data(), gam.data<int32_t>(), gdx.data());
    expect_close(gdx, dx, 1e-6f, 1e-6f, "maxpool backward");

    kc::avgpool_forward(s, x.data(), y.data());
    kg::avgpool_forward(s, gx.data(), gy.data());
    expect_close(gy, y, 1e-5f, 1e-6f, "avgpool forward");
    kc::avgpool_backward(s, dy.data(), dx.data());
    kg::avgpool_backward(s, gdy.data(), gdx.data());
    expect_close(gdx, dx, 1e-5f, 1e-6f, "avgpool backward");
  }
}

TEST_CASE("SGD step: CUDA matches CPU", "[cuda][sgd]") {
  for (bool nesterov : {false, true}) {
    for (int64_t n : {int64_t(1000), int64_t(12345)}) {
      INFO("n " << n << (nesterov ? ", nesterov" : ""));
      k::SgdParams p;
      p.lr = 0.05f;
      p.nesterov = nesterov;
      Tensor param = randn({n}), buf = Tensor::zeros({n});
      Tensor gparam = gpu(param), gbuf = gpu(buf);
      for (int step = 0; step < 3; ++step) {
        Tensor grad = randn({n}), ggrad = gpu(grad);
        kc::sgd_step(p, n, param.data(), grad.data(), buf.data());
        kg::sgd_step(p, n, gparam.data(), ggrad.data(), gbuf.data());
      }
      expect_close(gparam, param, 1e-5f, 1e-6f, "sgd parameters");
      expect_close(gbuf, buf, 1e-5f, 1e-6f, "sgd momentum buffer");
    }
  }
}
