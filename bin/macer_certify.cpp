// bin/macer_certify: Cohen's CERTIFY / PREDICT (and MACER's soft certification) of data-set
// images with a checkpoint, Cohen's TSV, the summary table/JSON and a plot; or --summarize TSVs.
#include <CLI/CLI.hpp>

#include "bin/cli.h"
#include <cstdio>
#include <memory>

#include "data/dataset.h"
#include "layers/registry.h"
#include "layers/state.h"
#include "macer/certify_dataset.h"
#include "macer/certify_report.h"
#include "macer/checkpoint.h"
#include "macer/config.h"
#include "macer/mat_results.h"

namespace {

struct Flags {
  std::string checkpoint, model, dataset, data_dir, split = "test", mode = "hard", output, device = "auto";
  std::string plot, json, mat, normalize;
  std::vector<std::string> summarize;
  double sigma = -1, alpha = 0.001, beta = 1.0;
  int64_t n0 = 100, n = 100000, batch = 1000, start = 0, count = -1, skip = 1, image_size = 224;
  uint64_t seed = 0;
  bool predict = false;
};

// Prints the table and the JSON of `summaries`, writes --json and --plot when asked.
void report(const Flags& fl, const std::vector<macer::CertifySummary>& summaries,
            const std::vector<macer::PlotSeries>& series) {
  std::printf("%s\n%s\n", macer::summary_table(summaries).c_str(), macer::summaries_json(summaries, -1).c_str());
  if (!fl.json.empty()) {
    macer::write_file_atomic(fl.json, macer::summaries_json(summaries) + "\n");
    std::printf("summary: %s\n", fl.json.c_str());
  }
  if (!fl.plot.empty()) {
    macer::plot_certified_accuracy(fl.plot, series);
    std::printf("plot: %s\n", fl.plot.c_str());
  }
}

int summarize_only(const Flags& fl) {
  MACER_CHECK(fl.mat.empty(), "--mat is written when certifying, not with --summarize");
  std::vector<macer::CertifySummary> summaries;
  std::vector<macer::PlotSeries> series;
  for (const std::string& path : fl.summarize) {
    macer::TsvFile f = macer::read_tsv(path);
    std::string label = macer::file_label(path);
    for (auto& s : macer::summarize_file(f, label)) summaries.push_back(s);
    for (auto& s : macer::plot_series(f, label)) series.push_back(s);
  }
  report(fl, summaries, series);
  return 0;
}

int certify_checkpoint(const Flags& fl) {
  using namespace macer;
  MACER_CHECK(!fl.checkpoint.empty(), "--checkpoint is required (or --summarize FILE.tsv ...)");
  Device device = parse_device(fl.device);
  require_device(device);

  // The model and its input shape: from the checkpoint's metadata, or --model for weights made
  // elsewhere (then the data set gives the shape).
  CheckpointInfo info;
  TrainConfig stored;  // the training config stored in the checkpoint: default data settings
  bool have_info = fl.model.empty();
  if (have_info) {
    info = read_checkpoint_info(fl.checkpoint);
    if (!info.config.empty()) stored = parse_train_config(info.config, fl.checkpoint + " (stored config)");
  }
  std::string dataset = !fl.dataset.empty() ? fl.dataset : have_info ? info.dataset : "";
  MACER_CHECK(!dataset.empty(), "--dataset is required (the checkpoint does not name one)");
  std::string dir = !fl.data_dir.empty() ? fl.data_dir : have_info && dataset == stored.data.dataset ? stored.data.dir : "";
  double sigma = fl.sigma >= 0 ? fl.sigma : have_info ? info.sigma : -1;
  MACER_CHECK(sigma > 0, "--sigma is required (the checkpoint does not record one)");

  data::DatasetOptions dopt;
  dopt.image_size = int(have_info && fl.image_size == 224 ? stored.data.image_size : fl.image_size);
  dopt.synthetic_size = stored.data.synthetic_size;
  dopt.seed = uint64_t(stored.run.seed);
  if (have_info) {
    dopt.synthetic_channels = info.channels, dopt.synthetic_height = info.height;
    dopt.synthetic_width = info.width, dopt.synthetic_classes = info.classes;
  }
  auto set = data::open_dataset(dataset, dir, fl.split, dopt);

  layers::ModelOptions mopt;
  mopt.channels = set->channels(), mopt.height = set->height(), mopt.width = set->width();
  mopt.classes = set->classes();
  std::unique_ptr<layers::Module> model;
  if (have_info) {
    MACER_CHECK(info.channels == mopt.channels && info.height == mopt.height && info.width == mopt.width &&
                    info.classes == mopt.classes,
                fl.checkpoint << " was trained on " << info.channels << "x" << info.height << "x" << info.width
                              << " images with " << info.classes << " classes; " << dataset << " has "
                              << mopt.channels << "x" << mopt.height << "x" << mopt.width << " with "
                              << mopt.classes);
    MACER_CHECK(fl.normalize.empty(), "--normalize is for --model weights; " << fl.checkpoint
                                                                          << " records its own normalization");
    mopt.normalize = info.normalize;
    model = layers::make_model(info.model, mopt);
    load_checkpoint(fl.checkpoint, *model, nullptr);
  } else {
    mopt.normalize = layers::normalization_preset(fl.normalize.empty() ? "none" : fl.normalize);
    model = layers::make_model(fl.model, mopt);
    layers::load_module(fl.checkpoint, *model);
  }
  model->to(device);

  CertifyOptions opt;
  opt.sigma = sigma, opt.n0 = fl.n0, opt.n = fl.n, opt.alpha = fl.alpha, opt.batch = fl.batch;
  opt.mode = parse_certify_mode(fl.mode), opt.beta = fl.beta, opt.seed = fl.seed;
  MACER_CHECK(!fl.predict || opt.mode == CertifyMode::Hard, "--predict counts votes: it takes no --mode soft/both");
  MACER_CHECK(!fl.predict || fl.mat.empty(), "--mat holds certified radii: --predict gives none");
  TsvKind kind = fl.predict ? TsvKind::Predict : opt.mode == CertifyMode::Both ? TsvKind::Both : TsvKind::Certify;
  std::printf("%s %s on %s: %s %s split, sigma %g, n0 %lld, n %lld, alpha %g, batch %lld, mode %s\n",
              fl.predict ? "predict" : "certify", fl.checkpoint.c_str(), device_description(device).c_str(),
              dataset.c_str(), fl.split.c_str(), sigma, (long long)opt.n0, (long long)opt.n, opt.alpha,
              (long long)opt.batch, certify_mode_name(opt.mode));
  std::fflush(stdout);

  if (!fl.mat.empty()) check_mat_writable(fl.mat);
  std::unique_ptr<TsvWriter> writer;
  if (!fl.output.empty()) writer = std::make_unique<TsvWriter>(fl.output, kind);
  std::vector<CertifyRow> rows = certify_range(*model, *set, device, opt, {fl.start, fl.count, fl.skip},
                                               fl.predict, writer.get(), fl.predict ? "predict" : "certify");
  TsvFile file{fl.output, kind, rows};
  std::string label = fl.output.empty() ? file_label(fl.checkpoint) : file_label(fl.output);
  if (!fl.output.empty()) std::printf("results: %s\n", fl.output.c_str());
  if (!fl.mat.empty()) {
    write_mat_results(fl.mat, rows, kind, opt.mode == CertifyMode::Soft);
    std::printf("mat: %s\n", fl.mat.c_str());
  }
  report(fl, summarize_file(file, label), plot_series(file, label));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Certify (Cohen's CERTIFY/PREDICT, MACER's soft bound) a smoothed classifier on data-set images"};
  Flags fl;
  app.set_config("--config", "", "a TOML file giving any of these flags (key = value)");
  app.add_option("--checkpoint", fl.checkpoint, "safetensors checkpoint (model name read from its metadata)");
  app.add_option("--model", fl.model, "model name for weights made elsewhere (e.g. converted from PyTorch)");
  app.add_option("--dataset", fl.dataset, "cifar10|mnist|fashion-mnist|svhn|imagefolder|synthetic");
  app.add_option("--data-dir", fl.data_dir, "folder holding the data set's files");
  app.add_option("--split", fl.split, "test|train")->check(CLI::IsMember({"test", "train"}));
  app.add_option("--image-size", fl.image_size, "imagefolder: crop size (default 224)")->check(CLI::Range(8, 4096));
  app.add_option("--sigma", fl.sigma, "noise level (default: the checkpoint's)")->check(CLI::Range(0.0, 1e3));
  app.add_option("--n0", fl.n0, "selection samples (default 100)")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--n", fl.n, "estimation samples (default 100000)")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--alpha", fl.alpha, "failure probability (default 0.001)")->check(CLI::Range(1e-300, 0.5));
  app.add_option("--batch", fl.batch, "noisy copies per forward pass (default 1000)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_option("--start", fl.start, "first image (default 0)")->check(CLI::NonNegativeNumber);
  app.add_option("--count", fl.count, "number of images (default: all)")->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  app.add_option("--skip", fl.skip, "take every skip-th image (default 1)")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--mode", fl.mode, "hard|soft|both (default hard)")->check(CLI::IsMember({"hard", "soft", "both"}));
  app.add_option("--beta", fl.beta, "soft: softmax(beta * logits) (default 1)")->check(CLI::PositiveNumber);
  app.add_flag("--predict", fl.predict, "run PREDICT instead of CERTIFY");
  app.add_option("--output", fl.output, "Cohen's tab-separated results, one row per image, written as it goes");
  app.add_option("--device", fl.device, "cpu|cuda|auto (default auto)")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  app.add_option("--seed", fl.seed, "noise seed (default 0)");
  app.add_option("--plot", fl.plot, "PNG of certified accuracy against radius");
  app.add_option("--json", fl.json, "write the summary as JSON to this file");
  app.add_option("--mat", fl.mat, "MACER's MATLAB file: 'hard' and/or 'soft', one radius per image, -1 where wrong");
  app.add_option("--normalize", fl.normalize, "with --model: input normalization none|cifar10|imagenet")
      ->check(CLI::IsMember({"none", "cifar10", "imagenet"}));
  app.add_option("--summarize", fl.summarize, "summarize (and --plot) finished TSV files instead of certifying");
  if (int code = macer::cli::parse(app, argc, argv); code >= 0) return code;
  return macer::cli::run([&] { return fl.summarize.empty() ? certify_checkpoint(fl) : summarize_only(fl); },
                         "lower --batch");
}
