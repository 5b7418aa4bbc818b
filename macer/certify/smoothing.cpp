// CERTIFY and PREDICT of macer/smoothing.h: batches of noisy copies through the base classifier,
// class counts and soft sums accumulated on the device, the bounds of macer/bounds.h on the host.
#include "macer/certify/smoothing.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/finite_check.h"
#include "kernels/smoothing.h"
#include "macer/certify/bounds.h"

namespace macer {

CertifyMode parse_certify_mode(const std::string& name) {
  if (name == "hard") return CertifyMode::Hard;
  if (name == "soft") return CertifyMode::Soft;
  if (name == "both") return CertifyMode::Both;
  throw Error("unknown certification mode '" + name + "' (expected hard, soft or both)");
}

const char* certify_mode_name(CertifyMode m) {
  switch (m) {
    case CertifyMode::Hard: return "hard";
    case CertifyMode::Soft: return "soft";
    case CertifyMode::Both: return "both";
  }
  return "?";
}

namespace {

constexpr uint64_t kImageStride = uint64_t(1) << 20;  // counters per image
constexpr uint64_t kPhaseStride = uint64_t(1) << 19;  // counters per phase (= max batches)

// What one phase leaves on the host: hard counts and/or soft sums, (classes) each.
struct PhaseSums {
  std::vector<int64_t> counts;
  std::vector<double> sums, sumsq;
  bool nonfinite = false;  // some logit was NaN or infinite
};

void check_arguments(const Tensor& image, int classes, const CertifyOptions& opt, uint64_t image_index,
                     const char* what) {
  MACER_CHECK(image.defined() && image.ndim() == 3 && image.dtype() == DType::F32,
              what << ": the image must be a (C, H, W) float tensor, got "
                   << (image.defined() ? shape_string(image.shape()) : std::string("nothing")));
  MACER_CHECK(classes >= 1, what << ": classes " << classes);
  MACER_CHECK(opt.sigma >= 0, what << ": sigma " << opt.sigma << " is negative");
  MACER_CHECK(opt.n0 >= 1 && opt.n >= 1, what << ": n0 " << opt.n0 << " and n " << opt.n << " must be >= 1");
  MACER_CHECK(opt.alpha > 0 && opt.alpha < 1, what << ": alpha " << opt.alpha << " not in (0, 1)");
  MACER_CHECK(opt.batch >= 1 && opt.batch <= (int64_t(1) << 31) - 1, what << ": batch " << opt.batch);
  MACER_CHECK(opt.mode == CertifyMode::Hard || opt.beta > 0, what << ": beta " << opt.beta << " must be > 0");
  int64_t batches = (std::max(opt.n0, opt.n) + opt.batch - 1) / opt.batch;
  MACER_CHECK(uint64_t(batches) <= kPhaseStride,
              what << ": " << batches << " batches per phase; at most 2^19 (raise --batch)");
  MACER_CHECK(image_index < (uint64_t(1) << 42), what << ": image index " << image_index << " too large");
  MACER_CHECK(opt.stream == noise::kCertify || opt.stream == noise::kTrainingCertify,
              what << ": not a certification noise stream");
}

// Draws `num` noisy copies of `image` in batches, counter = base + batch number, and sums on the
// device what `hard` / `soft` ask for; one host read-back at the end.
PhaseSums sample_phase(const BaseClassifier& f, const Tensor& image, int classes, const CertifyOptions& opt,
                       int64_t num, bool hard, bool soft, uint64_t counter_base) {
  const Device dev = image.device();
  const int64_t C = classes;
  // One F64 buffer (3C + 1): [counts as int64 | soft sums | soft sums of squares | bad flag as
  // int64]. int64 and double have the same width, so the counts and the flag share it and the
  // whole phase is read back in one copy. The flag stays 0 unless a logit is not finite (-1).
  Tensor acc = Tensor::zeros({3 * C + 1}, dev, DType::F64);
  double* sums = acc.data<double>() + C;
  double* sumsq = sums + C;
  int64_t* counts = reinterpret_cast<int64_t*>(acc.data<double>());
  int64_t* bad = reinterpret_cast<int64_t*>(sumsq + C);
  Tensor x1 = image.view({1, image.dim(0), image.dim(1), image.dim(2)});

  for (int64_t done = 0, b = 0; done < num; done += opt.batch, ++b) {
    int copies = static_cast<int>(std::min(opt.batch, num - done));
    Tensor noisy = ops::noisy_copies(x1, copies, static_cast<float>(opt.sigma), opt.seed,
                                     counter_base + static_cast<uint64_t>(b));  // (copies, C, H, W)
    Tensor logits = f(noisy);                                                  // (copies, classes)
    MACER_CHECK(logits.defined() && logits.ndim() == 2 && logits.dim(0) == copies && logits.dim(1) == C &&
                    logits.dtype() == DType::F32 && logits.device() == dev,
                "base classifier: expected float logits (" << copies << ", " << C << ") on "
                    << device_name(dev) << ", got "
                    << (logits.defined() ? shape_string(logits.shape()) + " on " + device_name(logits.device())
                                         : std::string("nothing")));
    kernels::LogitsShape s{copies, classes};
    MACER_DISPATCH(dev, first_bad_tag, int64_t(copies) * C, logits.data(), -1, bad);
    if (hard) MACER_DISPATCH(dev, argmax_histogram, s, logits.data(), counts);
    if (soft) MACER_DISPATCH(dev, soft_histogram, s, static_cast<float>(opt.beta), logits.data(), sums, sumsq);
  }

  Tensor host = dev == Device::CPU ? acc : acc.to(Device::CPU);  // the phase's one synchronisation
  const double* h = host.data<double>();
  PhaseSums out;
  int64_t flag;
  std::memcpy(&flag, h + 3 * C, sizeof flag);
  out.nonfinite = flag != 0;
  if (hard) {
    out.counts.resize(C);
    std::memcpy(out.counts.data(), h, C * sizeof(int64_t));
  }
  if (soft) {
    out.sums.assign(h + C, h + 2 * C);
    out.sumsq.assign(h + 2 * C, h + 3 * C);
  }
  return out;
}

// argmax with ties to the lowest index (numpy's argmax, as Cohen's code uses).
template <typename T> int argmax(const std::vector<T>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Abstain below 1/2; otherwise the radius sigma * Phi^-1(pA) of Cohen's Theorem 1.
void finish(Certificate& c, double p_lower, double sigma) {
  c.p_lower = p_lower;
  if (p_lower < 0.5) {
    c.prediction = -1;
    c.radius = 0;
  } else {
    c.prediction = c.guess;
    c.radius = sigma * normal_quantile(p_lower);
  }
}

// A classifier that outputs NaN or inf has no meaningful vote (a CPU argmax would hand it to
// some class and certify it): refuse instead of certifying garbage.
void refuse_nonfinite(const PhaseSums& p, uint64_t image_index, const char* what) {
  MACER_CHECK(!p.nonfinite, what << " image " << image_index
                                 << ": the base classifier gave NaN or infinite logits (are the checkpoint's "
                                    "weights finite? was training diverging?)");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

CertifyResult certify(const BaseClassifier& f, const Tensor& image, int classes, const CertifyOptions& opt,
                      uint64_t image_index) {
  check_arguments(image, classes, opt, image_index, "certify");
  auto t0 = std::chrono::steady_clock::now();
  const bool hard = opt.mode != CertifyMode::Soft;
  const bool soft = opt.mode != CertifyMode::Hard;
  const uint64_t base = opt.stream | image_index * kImageStride;

  // 1. selection: n0 samples, cA = the most counted class (soft: the largest sum).
  PhaseSums sel = sample_phase(f, image, classes, opt, opt.n0, hard, soft, base);
  // 2. estimation: n fresh samples (another phase, so other counters).
  PhaseSums est = sample_phase(f, image, classes, opt, opt.n, hard, soft, base + kPhaseStride);
  refuse_nonfinite(sel, image_index, "certify");
  refuse_nonfinite(est, image_index, "certify");

  CertifyResult r;
  if (hard) {
    r.hard.guess = argmax(sel.counts);
    // 3. pA = one-sided Clopper-Pearson lower bound of nA = counts[cA] in n.
    finish(r.hard, clopper_pearson_lower(est.counts[r.hard.guess], opt.n, opt.alpha), opt.sigma);
    r.counts0 = std::move(sel.counts);
    r.counts = std::move(est.counts);
  }
  if (soft) {
    r.soft.guess = argmax(sel.sums);
    // 3'. pA = empirical Bernstein lower bound from the sum and sum of squares of the
    //     softmax(beta z)[cA] over the n samples (MACER's code).
    int c = r.soft.guess;
    finish(r.soft, bernstein_lower(est.sums[c], est.sumsq[c], opt.n, opt.alpha), opt.sigma);
    r.soft0 = std::move(sel.sums);
    r.soft_sums = std::move(est.sums);
    r.soft_sumsq = std::move(est.sumsq);
  }
  r.seconds = seconds_since(t0);
  return r;
}

int64_t smallest_useful_n(const CertifyOptions& opt, bool predict) {
  // Whether n samples that all agree give an answer; monotone in n, so a doubling search brackets
  // the smallest such n and bisection finds it (n up to 2^40, the largest --n).
  auto useful = [&](int64_t n) {
    if (predict) return binomial_test_half(n, n) <= opt.alpha;
    if (opt.mode == CertifyMode::Soft) return bernstein_lower(double(n), double(n), n, opt.alpha) > 0.5;
    return clopper_pearson_lower(n, n, opt.alpha) > 0.5;
  };
  const int64_t cap = int64_t(1) << 40;
  int64_t hi = 1;
  while (hi < cap && !useful(hi)) hi *= 2;
  if (!useful(hi)) return cap + 1;
  int64_t lo = hi / 2;  // !useful(lo) unless lo = 0
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    (useful(mid) ? hi : lo) = mid;
  }
  return hi;
}

PredictResult predict(const BaseClassifier& f, const Tensor& image, int classes, const CertifyOptions& opt,
                      uint64_t image_index) {
  check_arguments(image, classes, opt, image_index, "predict");
  auto t0 = std::chrono::steady_clock::now();
  PhaseSums est = sample_phase(f, image, classes, opt, opt.n, true, false,
                               (opt.stream | image_index * kImageStride) + kPhaseStride);
  refuse_nonfinite(est, image_index, "predict");
  PredictResult r;
  r.counts = std::move(est.counts);
  // The top two classes: cA first (ties: lowest index), then the largest of the others.
  int a = argmax(r.counts);
  int64_t nB = 0;
  for (int c = 0; c < classes; ++c)
    if (c != a) nB = std::max(nB, r.counts[c]);
  int64_t nA = r.counts[a];
  r.p_value = binomial_test_half(nA, nA + nB);
  r.prediction = r.p_value > opt.alpha ? -1 : a;
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace macer
