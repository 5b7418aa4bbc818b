// Tests of the random and smoothing kernels on the CPU: Philox 4x32-10 (Random123's known-answer
// vectors), noisy copies (layout, reproducibility, moments) and the smoothing reductions.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "kernels/philox.h"
#include "gradcheck.h"
#include "kernels/smoothing.h"

using namespace macer;
using namespace macer::testing;

// ---- Philox -------------------------------------------------------------------------------

TEST_CASE("Philox4x32-10 matches Random123's known-answer vectors", "[philox]") {
  struct Kat {
    philox::U32x4 ctr;
    uint32_t k0, k1;
    uint32_t expect[4];
  };
  // Random123 kat_vectors, "philox4x32 10" lines: counter, key, expected output.
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    const philox::U32x4 out = philox::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) {
      INFO("key " << k.k0 << " " << k.k1 << ", word " << i);
      CHECK(out.v[i] == k.expect[i]);
    }
  }
}

TEST_CASE("uniforms lie in (0, 1] and normals are finite at the extremes", "[philox]") {
  CHECK(philox::uniform(0) > 0.0f);
  CHECK(philox::uniform(0xffffffffu) <= 1.0f);
  CHECK(philox::uniform(0x80000000u) == Approx(0.5f));
  for (uint64_t block : {uint64_t(0), uint64_t(1) << 40, ~uint64_t(0)}) {
    const philox::F32x4 n = philox::normals4(~uint64_t(0), ~uint64_t(0), block);
    for (float v : n.v) CHECK(std::isfinite(v));
  }
  // The seed's high word and the counter's high word both reach the generator.
  const philox::F32x4 a = philox::normals4(1, 1, 0), b = philox::normals4(1 | (uint64_t(1) << 32), 1, 0),
                      c = philox::normals4(1, 1 | (uint64_t(1) << 32), 0);
  CHECK(a.v[0] != b.v[0]);
  CHECK(a.v[0] != c.v[0]);
}

// ---- noisy copies -------------------------------------------------------------------------

TEST_CASE("noisy copies: copy j of input b at row b*k + j, drawing normals4(seed, counter, i/4)", "[noise]") {
  const int b = 3, k = 5;
  const float sigma = 0.5f;
  Tensor x = random_tensor({b, 2, 7, 9}, 1);
  const int64_t d = 2 * 7 * 9;  // 1890 outputs: not a multiple of 4, the last block is partial
  Tensor y = ops::noisy_copies(x, k, sigma, 42, 7);
  REQUIRE(y.shape() == Shape{b * k, 2, 7, 9});
  std::vector<float> want(size_t(y.numel()));
  for (int ib = 0; ib < b; ++ib)
    for (int j = 0; j < k; ++j)
      for (int64_t e = 0; e < d; ++e) {
        const int64_t i = (int64_t(ib) * k + j) * d + e;
        want[size_t(i)] = x.data()[ib * d + e] + sigma * philox::normals4(42, 7, uint64_t(i / 4)).v[i % 4];
      }
  require_close(y, Tensor::from_vector(want, y.shape()), 0, 1e-6, "noisy copies");
  // sigma = 0: every copy is its input exactly.
  Tensor clean = ops::noisy_copies(x, k, 0.0f, 42, 7);
  for (int ib = 0; ib < b; ++ib)
    for (int j = 0; j < k; ++j)
      CHECK(std::memcmp(clean.data() + (int64_t(ib) * k + j) * d, x.data() + ib * d, size_t(d) * 4) == 0);
}

TEST_CASE("noisy copies of a slice of a batch equal those rows of the whole batch's", "[noise]") {
  // D = 7: global quads straddle rows and slices, so the offset arithmetic is exercised.
  const int k = 3, n = 6, d = 7;
  Tensor x = random_tensor({n, d}, 5);
  Tensor whole = ops::noisy_copies(x, k, 0.5f, 42, 9);
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b <= n; ++b) {
      Tensor part = ops::noisy_copies(x.narrow_rows(a, b - a).clone(), k, 0.5f, 42, 9, a);
      INFO("inputs " << a << ".." << b);
      REQUIRE(part.numel() == int64_t(b - a) * k * d);
      CHECK(std::memcmp(part.data(), whole.data() + int64_t(a) * k * d, part.bytes()) == 0);
    }
}

TEST_CASE("noisy copies: the same stream gives the same bits, another stream other noise", "[noise]") {
  Tensor x = random_tensor({4, 33}, 2);
  Tensor y = ops::noisy_copies(x, 3, 0.25f, 42, 7);
  Tensor again = ops::noisy_copies(x, 3, 0.25f, 42, 7);
  CHECK(std::memcmp(y.data(), again.data(), y.bytes()) == 0);
  // A different counter (the next step) or seed: almost no element coincides.
  for (auto stream : {std::pair<uint64_t, uint64_t>{42, 8}, std::pair<uint64_t, uint64_t>{43, 7},
                      std::pair<uint64_t, uint64_t>{42, 7 + (uint64_t(1) << 32)}}) {
    Tensor other = ops::noisy_copies(x, 3, 0.25f, stream.first, stream.second);
    int64_t same = 0;
    for (int64_t i = 0; i < y.numel(); ++i) same += y.data()[i] == other.data()[i];
    INFO("seed " << stream.first << ", counter " << stream.second);
    CHECK(same < 3);
  }
  // The k copies of one input carry different noise.
  int64_t same = 0;
  for (int64_t e = 0; e < 33; ++e) same += y.data()[e] == y.data()[33 + e];
  CHECK(same < 3);
}

TEST_CASE("noisy copies: the noise is N(0, sigma^2) within sampling error", "[noise]") {
  // N = 400,000 draws. Mean: standard error sigma / sqrt(N). Sample variance: standard error
  // sigma^2 sqrt(2 / (N - 1)). Kurtosis of a Gaussian is 3 (standard error sqrt(24 / N) ~ 0.008;
  // a uniform would give 1.8). Neighbouring draws (two halves of a Box-Muller pair) and draws
  // one block apart are uncorrelated: standard error 1 / sqrt(pairs). Bounds: 5 standard errors.
  const float sigma = 0.5f;
  Tensor noise = ops::noisy_copies(Tensor::zeros({1, 200000}), 2, sigma, 5, 0);
  const float* v = noise.data();
  const int64_t count = noise.numel();
  const double n = double(count);
  double mean = 0, var = 0, fourth = 0;
  for (int64_t i = 0; i < count; ++i) mean += v[i];
  mean /= n;
  for (int64_t i = 0; i < count; ++i) {
    const double dv = v[i] - mean;
    var += dv * dv;
    fourth += dv * dv * dv * dv;
  }
  var /= n - 1;
  fourth /= n;
  CHECK(std::fabs(mean) < 5 * sigma / std::sqrt(n));
  CHECK(std::fabs(var - sigma * sigma) < 5 * sigma * sigma * std::sqrt(2.0 / (n - 1)));
  CHECK(std::fabs(fourth / (var * var) - 3.0) < 5 * std::sqrt(24.0 / n));
  for (int64_t lag : {1, 4}) {
    double corr = 0;
    int64_t pairs = 0;
    for (int64_t i = 0; i + lag < count; i += 2 * lag, ++pairs) corr += (v[i] - mean) * (v[i + lag] - mean);
    corr /= double(pairs) * var;
    INFO("lag " << lag);
    CHECK(std::fabs(corr) < 5 / std::sqrt(double(pairs)));
  }
  // Tails: P(|n| > 3) = 0.0027 for a standard normal.
  int64_t beyond = 0;
  for (int64_t i = 0; i < count; ++i) beyond += std::fabs(v[i]) > 3 * sigma;
  const double p = 0.0026998;
  CHECK(std::fabs(double(beyond) - p * n) < 5 * std::sqrt(n * p * (1 - p)));
}

// ---- smoothing reductions -----------------------------------------------------------------

namespace {
// The first index of the largest value: the tie rule of every smoothing reduction.
int first_argmax(const float* z, int n) {
  int best = 0;
  for (int c = 1; c < n; ++c)
    if (z[c] > z[best]) best = c;
  return best;
}

// Logits of small integers: many rows with tied maxima.
Tensor tied_logits(int rows, int classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, 3);
  std::vector<float> v(size_t(rows) * classes);
  for (float& x : v) x = float(dist(rng));
  return Tensor::from_vector(v, {rows, classes});
}
}  // namespace

TEST_CASE("argmax_histogram counts the first maximum of every row, accumulating", "[smoothing]") {
  const int rows = 500, classes = 7;
  for (bool ties : {true, false}) {
    Tensor z = ties ? tied_logits(rows, classes, 3) : random_normal({rows, classes}, 4);
    std::vector<int64_t> counts(classes, 10), want(classes, 10);  // counts add onto what is there
    kernels::cpu::argmax_histogram({rows, classes}, z.data(), counts.data());
    for (int r = 0; r < rows; ++r) ++want[size_t(first_argmax(z.data() + r * classes, classes))];
    CHECK(counts == want);
  }
  // A hand-made tie: the lower class wins.
  std::vector<float> tie = {0, 5, 1, 5};
  std::vector<int64_t> counts(4, 0);
  kernels::cpu::argmax_histogram({1, 4}, tie.data(), counts.data());
  CHECK(counts == std::vector<int64_t>{0, 1, 0, 0});
}

TEST_CASE("soft_histogram sums softmax(beta z) and its squares, accumulating in double", "[smoothing]") {
  const int rows = 300, classes = 10;
  for (float beta : {1.0f, 16.0f}) {
    INFO("beta " << beta);
    Tensor z = random_normal({rows, classes}, 5, 3.0f);  // beta 16: scores up to ~300, exp overflows unless shifted
    std::vector<double> sums(classes, 1.0), sumsq(classes, 2.0), want(classes, 1.0), want_sq(classes, 2.0);
    kernels::cpu::soft_histogram({rows, classes}, beta, z.data(), sums.data(), sumsq.data());
    for (int r = 0; r < rows; ++r) {
      const float* row = z.data() + r * classes;
      double m = -INFINITY, total = 0;
      for (int c = 0; c < classes; ++c) m = std::max(m, double(beta) * row[c]);
      std::vector<double> e(classes);
      for (int c = 0; c < classes; ++c) total += e[size_t(c)] = std::exp(double(beta) * row[c] - m);
      for (int c = 0; c < classes; ++c) {
        want[size_t(c)] += e[size_t(c)] / total;
        want_sq[size_t(c)] += (e[size_t(c)] / total) * (e[size_t(c)] / total);
      }
    }
    double total_sum = 0;
    for (int c = 0; c < classes; ++c) {
      CHECK(sums[size_t(c)] == Approx(want[size_t(c)]).epsilon(1e-6).margin(1e-9));
      CHECK(sumsq[size_t(c)] == Approx(want_sq[size_t(c)]).epsilon(1e-6).margin(1e-9));
      total_sum += sums[size_t(c)] - 1.0;
    }
    CHECK(total_sum == Approx(rows).epsilon(1e-9));  // each row's softmax sums to 1
  }
}

TEST_CASE("vote_correct counts inputs whose majority class over k copies is the label", "[smoothing]") {
  // Hand-made: 3 inputs x 4 copies x 3 classes.
  // input 0: votes 1,1,2,0 -> class 1 (label 1: correct)
  // input 1: votes 2,0,2,0 -> tie 0/2, the lower wins: 0 (label 2: wrong; label 0 would be right)
  // input 2: votes 2,2,2,1 -> class 2 (label 2: correct)
  const int votes[3][4] = {{1, 1, 2, 0}, {2, 0, 2, 0}, {2, 2, 2, 1}};
  std::vector<float> z(3 * 4 * 3, 0.0f);
  for (int b = 0; b < 3; ++b)
    for (int j = 0; j < 4; ++j) z[size_t((b * 4 + j) * 3 + votes[b][j])] = 1.0f;
  std::vector<float> correct = {0.5f};  // accumulates
  std::vector<int32_t> labels = {1, 2, 2};
  kernels::cpu::vote_correct({12, 3}, 4, z.data(), labels.data(), correct.data());
  CHECK(correct[0] == 2.5f);
  labels = {1, 0, 2};
  correct = {0.0f};
  kernels::cpu::vote_correct({12, 3}, 4, z.data(), labels.data(), correct.data());
  CHECK(correct[0] == 3.0f);

  // Random tie-rich logits against the definition.
  const int inputs = 200, copies = 6, classes = 4;
  Tensor lz = tied_logits(inputs * copies, classes, 6);
  Tensor lab = random_labels(inputs, classes, 7);
  int want = 0;
  for (int b = 0; b < inputs; ++b) {
    std::vector<float> count(classes, 0.0f);
    for (int j = 0; j < copies; ++j) count[size_t(first_argmax(lz.data() + (b * copies + j) * classes, classes))] += 1;
    want += first_argmax(count.data(), classes) == lab.data<int32_t>()[b];
  }
  REQUIRE(want > 0);
  std::vector<float> got = {0.0f};
  kernels::cpu::vote_correct({inputs * copies, classes}, copies, lz.data(), lab.data<int32_t>(), got.data());
  CHECK(got[0] == float(want));
}
