// Helpers shared by the CPU-vs-CUDA parity tests: seeded random inputs, device copies, and
// comparisons that report how many elements are outside tolerance and the worst one.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace macer::parity {

using macer::Device;
using macer::DType;
using macer::Shape;
using macer::Tensor;

inline std::mt19937& rng() {
  static std::mt19937 gen(20240611);
  return gen;
}

// A CPU tensor of N(mean, scale^2) values.
inline Tensor randn(const Shape& shape, float scale = 1.0f, float mean = 0.0f) {
  std::normal_distribution<float> dist(mean, scale);
  std::vector<float> v(static_cast<size_t>(macer::shape_numel(shape)));
  for (float& x : v) x = dist(rng());
  return Tensor::from_vector(v, shape);
}

// Small integers as floats: rows with tied maxima are common.
inline Tensor rand_ints_as_floats(const Shape& shape, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(macer::shape_numel(shape)));
  for (float& x : v) x = float(dist(rng()));
  return Tensor::from_vector(v, shape);
}

inline Tensor rand_labels(int64_t n, int classes) {
  std::uniform_int_distribution<int> dist(0, classes - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t& x : v) x = dist(rng());
  return Tensor::from_ints(v, {n});
}

inline Tensor gpu(const Tensor& t) { return t.to(Device::CUDA); }

template <typename T>
std::vector<T> host(const Tensor& t) {
  Tensor h = t.device() == Device::CPU ? t : t.to(Device::CPU);
  const T* p = h.data<T>();
  return std::vector<T>(p, p + h.numel());
}

// |got - want| <= atol + rtol |want| everywhere, with atol = atol_rel * max(1, max |want|).
template <typename T>
void expect_close_t(const Tensor& got, const Tensor& want, double rtol, double atol_rel,
                    const std::string& what) {
  std::vector<T> g = host<T>(got), w = host<T>(want);
  REQUIRE(g.size() == w.size());
  double scale = 1.0;
  for (T x : w) scale = std::max(scale, std::fabs(double(x)));
  const double atol = atol_rel * scale;
  size_t bad = 0, worst = 0;
  double worst_excess = -1e300;
  for (size_t i = 0; i < g.size(); ++i) {
    double d = std::fabs(double(g[i]) - double(w[i]));
    double excess = d - (atol + rtol * std::fabs(double(w[i])));
    if (!(excess <= 0.0)) ++bad;
    if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
  }
  INFO(what << ": " << bad << " of " << g.size() << " outside tolerance; worst at " << worst
            << ": cuda " << (g.empty() ? 0.0 : double(g[worst])) << ", cpu "
            << (w.empty() ? 0.0 : double(w[worst])));
  CHECK(bad == 0);
}

inline void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol_rel,
                         const std::string& what) {
  expect_close_t<float>(got, want, rtol, atol_rel, what);
}

// Exact equality (integers, bits), reporting how many differ and the first.
template <typename T>
void expect_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  std::vector<T> g = host<T>(got), w = host<T>(want);
  REQUIRE(g.size() == w.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != w[i] && bad++ == 0) first = i;
  INFO(what << ": " << bad << " of " << g.size() << " differ; first at " << first << ": cuda "
            << (bad ? double(g[first]) : 0.0) << ", cpu " << (bad ? double(w[first]) : 0.0));
  CHECK(bad == 0);
}

}  // namespace macer::parity
