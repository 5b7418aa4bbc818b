// Tests of the Philox 4x32-10 generator (known-answer vectors of Random123, which cuRAND's
// Philox reproduces) and of noisy copies: layout, reproducibility, and the noise's moments.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "engine/ops.h"
#include "engine/philox.h"
#include "op_check.h"

using namespace macer;

TEST_CASE("Philox4x32-10 matches Random123's known-answer vectors", "[philox]") {
  struct Kat {
    philox::U32x4 ctr;
    uint32_t k0, k1;
    uint32_t expect[4];
  };
  // Random123 kat_vectors: philox4x32 10 rounds.
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    philox::U32x4 out = philox::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) CHECK(out.v[i] == k.expect[i]);
  }
}

TEST_CASE("uniforms lie in (0, 1] and normals are finite at the extremes", "[philox]") {
  CHECK(philox::uniform(0) > 0.0f);
  CHECK(philox::uniform(0xffffffffu) <= 1.0f);
  for (uint64_t block : {uint64_t(0), uint64_t(1) << 40, ~uint64_t(0)}) {
    philox::F32x4 n = philox::normals4(~uint64_t(0), ~uint64_t(0), block);
    for (float v : n.v) CHECK(std::isfinite(v));
  }
}

TEST_CASE("noisy copies: layout, reproducibility, and N(0, sigma^2) noise", "[philox][noise]") {
  const int b = 3, k = 5;
  const float sigma = 0.5f;
  Tensor x = testing::random_tensor({b, 2, 7, 9}, 1);
  const int64_t d = 2 * 7 * 9;
  Tensor y = ops::noisy_copies(x, k, sigma, 42, 7);
  REQUIRE(y.shape() == Shape{b * k, 2, 7, 9});
  // Same (seed, counter): the same bits; another counter or seed: different noise.
  Tensor again = ops::noisy_copies(x, k, sigma, 42, 7);
  CHECK(std::memcmp(y.data(), again.data(), y.bytes()) == 0);
  Tensor other_counter = ops::noisy_copies(x, k, sigma, 42, 8), other_seed = ops::noisy_copies(x, k, sigma, 43, 7);
  int same_c = 0, same_s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    same_c += y.data()[i] == other_counter.data()[i];
    same_s += y.data()[i] == other_seed.data()[i];
  }
  CHECK(same_c < 5);
  CHECK(same_s < 5);
  // Copy j of input b sits at row b*k + j: y - x[b] is the noise, element i takes
  // normals4(seed, counter, i / 4).v[i % 4].
  for (int ib = 0; ib < b; ++ib)
    for (int j = 0; j < k; ++j)
      for (int64_t e = 0; e < d; e += 17) {
        int64_t i = (int64_t(ib) * k + j) * d + e;
        float n = philox::normals4(42, 7, uint64_t(i / 4)).v[i % 4];
        CHECK(y.data()[i] == Approx(x.data()[ib * d + e] + sigma * n).margin(1e-6));
      }
  // Moments over many draws: mean within 5 standard errors of 0 (se = sigma / sqrt(N)), variance
  // within 5 standard errors of sigma^2 (se of the sample variance = sigma^2 sqrt(2 / (N-1))).
  Tensor zeros = Tensor::zeros({1, 200000});
  Tensor noise = ops::noisy_copies(zeros, 2, sigma, 5, 0);
  const double n = double(noise.numel());
  double mean = 0, var = 0, fourth = 0;
  for (int64_t i = 0; i < noise.numel(); ++i) mean += noise.data()[i];
  mean /= n;
  for (int64_t i = 0; i < noise.numel(); ++i) {
    double dv = noise.data()[i] - mean;
    var += dv * dv;
    fourth += dv * dv * dv * dv;
  }
  var /= n - 1;
  fourth /= n;
  CHECK(std::fabs(mean) < 5 * sigma / std::sqrt(n));
  CHECK(std::fabs(var - sigma * sigma) < 5 * sigma * sigma * std::sqrt(2.0 / (n - 1)));
  // Gaussian kurtosis is 3 (a uniform would give 1.8): within a generous 0.1.
  CHECK(fourth / (var * var) == Approx(3.0).margin(0.1));
  // Correlation between neighbouring draws (the two halves of a Box-Muller pair) is about 0.
  double corr = 0;
  for (int64_t i = 0; i + 1 < noise.numel(); i += 2) corr += (noise.data()[i] - mean) * (noise.data()[i + 1] - mean);
  corr /= (n / 2) * var;
  CHECK(std::fabs(corr) < 5 / std::sqrt(n / 2));
}
