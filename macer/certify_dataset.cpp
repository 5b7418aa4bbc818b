// The certification loop over data-set images, and its use during training.
#include "macer/certify_dataset.h"

#include <algorithm>
#include <cstdio>

#include "engine/autograd.h"
#include "macer/progress.h"

namespace macer {

std::vector<int64_t> select_images(int64_t size, const ImageRange& range) {
  MACER_CHECK(range.start >= 0 && range.skip >= 1, "bad image range: start " << range.start << ", skip " << range.skip);
  std::vector<int64_t> indices;
  for (int64_t i = range.start; i < size; i += range.skip) {
    if (range.count >= 0 && int64_t(indices.size()) >= range.count) break;
    indices.push_back(i);
  }
  MACER_CHECK(!indices.empty(), "no images to certify: start " << range.start << ", count " << range.count
                                                              << ", skip " << range.skip << " select none of the "
                                                              << size << " images");
  return indices;
}

std::vector<CertifyRow> certify_images(layers::Module& model, const data::Dataset& dataset, Device device,
                                       const CertifyOptions& opt, const std::vector<int64_t>& indices,
                                       bool predict_only, TsvWriter* writer, const std::string& label) {
  model.eval();
  NoGradGuard no_grad;
  BaseClassifier f = [&model](const Tensor& noisy) { return model.forward(Var(noisy)).value(); };
  Tensor host = Tensor::empty({dataset.channels(), dataset.height(), dataset.width()});
  std::unique_ptr<Progress> progress;
  if (!label.empty()) progress = std::make_unique<Progress>(label, int64_t(indices.size()), "img", 10);
  std::vector<CertifyRow> rows;
  int64_t correct = 0;
  for (int64_t idx : indices) {
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
    correct += row.correct;
    if (writer) writer->write(row);
    rows.push_back(row);
    if (progress) {
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
                                    Device device) {
  CertifyOptions opt;
  opt.sigma = c.objective.sigma;
  opt.n0 = c.certify.n0;
  opt.n = c.certify.n;
  opt.alpha = c.certify.alpha;
  opt.batch = c.certify.batch;
  opt.seed = uint64_t(c.run.seed);
  opt.stream = noise::kTrainingCertify;  // draws apart from training's and macer_certify's
  auto indices = select_images(test.size(), {c.certify.start, c.certify.count, c.certify.skip});
  auto rows = certify_images(model, test, device, opt, indices, /*predict=*/false, nullptr, "certify");
  CertifySummary s = summarize(rows, "epoch");
  std::fprintf(stderr, "%s", summary_table({s}).c_str());
  return summary_json(s);
}

}  // namespace macer
