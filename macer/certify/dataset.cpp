// The certification loop over data-set images, and its use during training.
#include "macer/certify/dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "engine/autograd.h"
#include "layers/folded.h"
#include "macer/distributed.h"
#include "macer/interrupt.h"
#include "macer/progress.h"

namespace macer {

std::vector<int64_t> select_images(int64_t size, const ImageRange& range) {
  MACER_CHECK(range.start >= 0 && range.skip >= 1, "bad image range: start " << range.start << ", skip " << range.skip);
  std::vector<int64_t> indices;
  for (int64_t i = range.start; i < size; i += range.skip) {
    if (range.count >= 0 && int64_t(indices.size()) >= range.count) break;
    indices.push_back(i);
  }
  MACER_CHECK(!indices.empty(), "no images to certify: start " << range.start << ", count "
                                                              << (range.count < 0 ? std::string("all")
                                                                                  : std::to_string(range.count))
                                                              << ", skip " << range.skip << " select none of the "
                                                              << size << " images"
                                                              << (range.start >= size ? " (start must be below " +
                                                                                            std::to_string(size) + ")"
                                                                                      : std::string()));
  return indices;
}

namespace {

// A row as doubles, to gather rows of several ranks (valid = 0: the rank had no image).
constexpr size_t kRowDoubles = 10;
std::vector<double> pack(const CertifyRow* r) {
  if (!r) return std::vector<double>(kRowDoubles, 0.0);
  return {1.0, double(r->idx), double(r->label), double(r->predict), r->radius, double(r->correct),
          double(r->soft_predict), r->soft_radius, double(r->soft_correct), r->seconds};
}
CertifyRow unpack(const double* v) {
  CertifyRow r;
  r.idx = int64_t(v[1]), r.label = int(v[2]), r.predict = int(v[3]), r.radius = v[4], r.correct = v[5] != 0;
  r.soft_predict = int(v[6]), r.soft_radius = v[7], r.soft_correct = v[8] != 0, r.seconds = v[9];
  return r;
}

}  // namespace

std::vector<CertifyRow> certify_images(layers::Module& model, const data::Dataset& dataset, Device device,
                                       const CertifyOptions& opt, const std::vector<int64_t>& indices,
                                       bool predict_only, TsvWriter* writer, const std::string& label,
                                       bool across_ranks) {
  model.eval();
  NoGradGuard no_grad;
  BaseClassifier f = [&model](const Tensor& noisy) { return model.forward(Var(noisy)).value(); };
  Tensor host = Tensor::empty({dataset.channels(), dataset.height(), dataset.width()});
  const int world = across_ranks ? dist::size() : 1, me = across_ranks ? dist::rank() : 0;
  std::unique_ptr<Progress> progress;
  if (!label.empty())
    progress = std::make_unique<Progress>(label, int64_t(indices.size()), "img", 10, /*quiet=*/me != 0);
  auto certify_one = [&](int64_t idx) {
    dataset.image(idx, host.data());
    Tensor image = host.to(device);
    CertifyRow row;
    row.idx = idx;
    row.label = dataset.label(idx);
    if (predict_only) {
      PredictResult p = predict(f, image, dataset.classes(), opt, uint64_t(idx));
      row.predict = p.prediction;
      row.seconds = p.seconds;
    } else {
      CertifyResult r = certify(f, image, dataset.classes(), opt, uint64_t(idx));
      const Certificate& main = opt.mode == CertifyMode::Soft ? r.soft : r.hard;
      row.predict = main.prediction;
      row.radius = main.radius;
      row.soft_predict = r.soft.prediction;
      row.soft_radius = r.soft.radius;
      row.soft_correct = r.soft.prediction == row.label;
      row.seconds = r.seconds;
    }
    row.correct = row.predict == row.label;
    return row;
  };
  // Rounds of `world` images: rank r certifies image round * world + r, then rank 0 gathers the
  // round's rows and writes them in order. One rank (or not across ranks): no communication.
  std::vector<CertifyRow> rows;
  int64_t correct = 0;
  const int64_t n = int64_t(indices.size());
  for (int64_t first = 0; first < n; first += world) {
    check_interrupt();  // Ctrl-C: the rows written so far stay (one process only, macer/interrupt.h)
    std::vector<CertifyRow> round;
    if (world == 1) {
      round.push_back(certify_one(indices[size_t(first)]));
    } else {
      const int64_t mine = first + me;
      CertifyRow row;
      if (mine < n) row = certify_one(indices[size_t(mine)]);
      std::vector<double> all = dist::gather(pack(mine < n ? &row : nullptr));
      for (size_t at = 0; at + kRowDoubles <= all.size(); at += kRowDoubles)
        if (all[at] != 0) round.push_back(unpack(&all[at]));
    }
    for (const CertifyRow& row : round) {
      correct += row.correct;
      if (writer) writer->write(row);
      rows.push_back(row);
    }
    if (progress && !rows.empty()) {
      char fields[96];
      double noisy_per_s = double(rows.size()) * double(opt.n0 + opt.n) / std::max(progress->elapsed_seconds(), 1e-9);
      std::snprintf(fields, sizeof fields, "%.0f noisy fwd/s | correct %.3f", noisy_per_s,
                    double(correct) / double(rows.size()));
      progress->update(int64_t(rows.size()), fields);
    }
  }
  if (progress) progress->finish();
  return rows;
}

std::string certify_during_training(const TrainConfig& c, layers::Module& model, const data::Dataset& test,
                                    Device device, int64_t epoch) {
  CertifyOptions opt;
  opt.sigma = c.objective.sigma;
  opt.n0 = c.certify.n0;
  opt.n = c.certify.n;
  opt.alpha = c.certify.alpha;
  opt.batch = c.certify.batch;
  opt.seed = uint64_t(c.run.seed);
  opt.stream = noise::kTrainingCertify;  // draws apart from training's and macer_certify's
  auto indices = select_images(test.size(), {c.certify.start, c.certify.count, c.certify.skip});
  // The network's inference form, as macer_certify certifies it (layers/folded.h). Only rank 0
  // runs this (its batch-norm statistics are the checkpoint's), so the images are not shared.
  std::unique_ptr<layers::Module> folded =
      layers::fold_batchnorm(model, layers::normalization_preset(c.model.normalize), device);
  auto rows = certify_images(folded ? *folded : model, test, device, opt, indices, /*predict=*/false, nullptr,
                             "certify", /*across_ranks=*/false);
  CertifySummary s = summarize(rows, "epoch " + std::to_string(epoch));
  s.sigma = opt.sigma;
  std::fprintf(stderr, "%s", summary_table({s}).c_str());
  // What the numbers are of: the summary with the certification's n0, n and alpha (and sigma).
  nlohmann::json j = nlohmann::json::parse(summary_json(s));
  j["n0"] = opt.n0, j["n"] = opt.n, j["alpha"] = opt.alpha;
  return j.dump();
}

}  // namespace macer
