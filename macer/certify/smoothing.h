// Randomized smoothing (Cohen et al. 2019; MACER's soft variant): CERTIFY and PREDICT of one
// image, with noise, argmax and class histograms on the image's device, one read-back per phase.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "macer/noise_streams.h"

namespace macer {

// The base classifier under noise: noisy images (m, C, H, W) -> logits (m, classes), F32, on
// the images' device. The caller has put the model in eval mode and holds a NoGradGuard.
using BaseClassifier = std::function<Tensor(const Tensor& noisy_images)>;

// hard: Cohen's counts and Clopper-Pearson; soft: MACER's mean of softmax(beta z) and the
// empirical Bernstein bound; both: the two from the same noisy samples.
enum class CertifyMode { Hard, Soft, Both };
CertifyMode parse_certify_mode(const std::string& name);  // "hard" | "soft" | "both"
const char* certify_mode_name(CertifyMode m);

struct CertifyOptions {
  double sigma = 0.25;
  int64_t n0 = 100;        // selection samples (CERTIFY only)
  int64_t n = 100000;      // estimation samples
  double alpha = 0.001;
  int64_t batch = 1000;    // noisy copies per forward pass
  CertifyMode mode = CertifyMode::Hard;
  double beta = 1.0;       // soft only: softmax(beta * logits)
  uint64_t seed = 0;
  uint64_t stream = noise::kCertify;  // macer/noise_streams.h: kCertify or kTrainingCertify
};

struct Certificate {
  int guess = -1;        // cA from the selection phase
  int prediction = -1;   // cA, or -1 (abstain) when p_lower < 0.5
  double p_lower = 0;    // the lower confidence bound on pA
  double radius = 0;     // sigma * Phi^-1(p_lower), 0 on abstention
};

struct CertifyResult {
  Certificate hard, soft;                 // those of the mode are filled
  std::vector<int64_t> counts0, counts;   // (classes) hard counts: selection, estimation
  std::vector<double> soft0, soft_sums, soft_sumsq;  // (classes) soft sums: selection, estimation
  double seconds = 0;                     // wall time of this image, read-backs included
};

struct PredictResult {
  int prediction = -1;          // -1: abstain
  std::vector<int64_t> counts;  // (classes)
  double p_value = 1;           // two-sided binomial test of the top two counts
  double seconds = 0;
};

// Noise draws use Philox(seed, counter) with counter = stream | image_index * 2^20 + phase * 2^19
// + batch number (phase 0: selection, 1: estimation), so no two batches of a run share draws
// and none is drawn by training (macer/noise_streams.h); image_index must be below 2^42 and
// ceil(n / batch) at most 2^19.
//
// CERTIFY (SPEC.md): cA = argmax of the n0 selection counts (soft: sums; ties: lowest class),
// pA = lower bound from n fresh samples, abstain when pA < 0.5, else radius sigma Phi^-1(pA).
// `image` is (C, H, W) on the device the classifier runs on.
CertifyResult certify(const BaseClassifier& f, const Tensor& image, int classes,
                      const CertifyOptions& opt, uint64_t image_index);

// PREDICT (SPEC.md): counts over n samples (phase 1); nA, nB the top two; abstain when the
// two-sided binomial test p-value of nA in nA + nB at 0.5 exceeds alpha, else cA.
// Uses sigma, n, alpha, batch and seed of `opt`; mode, n0 and beta are ignored.
PredictResult predict(const BaseClassifier& f, const Tensor& image, int classes,
                      const CertifyOptions& opt, uint64_t image_index);

// The smallest n with which a run can certify (or PREDICT answer) anything at opt.alpha: even
// when all n samples agree, a smaller n leaves the bound at or below 1/2 (hard: alpha^(1/n)
// <= 1/2, n < log2(1/alpha); soft: the Bernstein bound of n ones; PREDICT: the binomial
// p-value 2^(1 - n) > alpha). CERTIFY with mode both: the hard bound's (the smaller).
// At alpha = 0.001: hard 10, soft 37, PREDICT 11.
int64_t smallest_useful_n(const CertifyOptions& opt, bool predict);

}  // namespace macer
