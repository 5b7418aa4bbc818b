// bin/macer_certify: Cohen's CERTIFY / PREDICT (and MACER's soft certification) of data-set
// images with a checkpoint, Cohen's TSV, the summary table/JSON and a plot; or --summarize TSVs.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "bin/cli.h"
#include "engine/precision.h"
#include "macer/certify/dataset.h"
#include "macer/certify/report.h"
#include "macer/certify/source.h"
#include "macer/distributed.h"
#include "macer/certify/mat_results.h"
#include "macer/certify/run_record.h"
#include "macer/interrupt.h"
#include "macer_version.h"

namespace {

struct Flags {
  std::string checkpoint, model, dataset, data_dir, split = "test", mode = "hard", output, device = "auto";
  std::string class_order;  // imagefolder: empty: the checkpoint's (else auto)
  std::string plot, json, mat, normalize, shard, inference = "folded", precision = "fp32";  // shard "I/N": this process certifies images I, I+N, ... of the run
  std::string markdown, latex;  // Cohen's analyze.py tables for papers
  std::vector<std::string> summarize;
  double sigma = -1, alpha = 0.001, beta = -1;  // beta -1: the checkpoint's objective.beta, else 1
  double radius_step = 0.25, radius_max = -1;     // radius_max -1: default_radius_max(sigma)
  int64_t n0 = 100, n = 100000, batch = 1000, start = 0, count = -1, skip = 1, image_size = 224;
  int64_t max = -1;  // Cohen's --max: only images with index < max (-1: all)
  uint64_t seed = 0;
  bool predict = false, resume = false, overwrite = false, other_data = false, any_n = false;
};

// Every output path, checked before any work so that a typo is not found hours later.
void check_outputs(const Flags& fl) {
  if (!fl.output.empty()) macer::check_writable(fl.output, "--output");
  if (!fl.json.empty()) macer::check_writable(fl.json, "--json");
  if (!fl.plot.empty()) {
    macer::check_writable(fl.plot, "--plot");
    std::string ext = std::filesystem::path(fl.plot).extension().string();
    for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    MACER_CHECK(ext == ".png", "--plot " << fl.plot << ": --plot draws PNG only, so its file must end in .png; "
                                         << "for PDF or SVG run scripts/plot_certify.py on the --output TSV");
  }
  if (!fl.mat.empty()) macer::check_writable(fl.mat, "--mat");
  if (!fl.markdown.empty()) macer::check_writable(fl.markdown, "--markdown");
  if (!fl.latex.empty()) macer::check_writable(fl.latex, "--latex");
}

// What makes the rows of a run: --resume continues a TSV only when all of it is the same.
std::vector<std::pair<std::string, std::string>> run_record(const Flags& fl, const macer::CertifySource& src,
                                                            double beta) {
  const std::string& dataset = src.dataset;
  const std::string& dir = src.data_dir;
  const double sigma = src.sigma;
  const std::string& fingerprint = src.data_fingerprint;
  const double train_sigma = src.train_sigma;
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  std::vector<std::pair<std::string, std::string>> record = {
          {"checkpoint", macer::file_fingerprint(fl.checkpoint)},
          {"model", src.model_name},
          {"normalize", src.normalize},
          {"dataset", dataset},
          {"data_dir", dir},
          {"data_fingerprint", fingerprint},
          {"split", fl.split},
          {"input", std::to_string(src.set->channels()) + "x" + std::to_string(src.set->height()) + "x" +
                        std::to_string(src.set->width())},
          {"sigma", num(sigma)},
          {"train_sigma", train_sigma >= 0 ? num(train_sigma) : "(unknown)"},
          {"n0", std::to_string(fl.n0)},
          {"n", std::to_string(fl.n)},
          {"alpha", num(fl.alpha)},
          {"batch", std::to_string(fl.batch)},
          {"mode", fl.predict ? "predict" : fl.mode},
          {"beta", num(beta)},
          {"seed", std::to_string(fl.seed)},
          {"start", std::to_string(fl.start)},
          {"skip", std::to_string(fl.skip)},
          {"inference", fl.inference},
          {"precision", fl.precision},
          // bf16 activations between layers (engine/precision.h; CPU, channels-last): the classifier
          // a bf16 run certifies; records from before the key held them in fp32
          {"activations",
           fl.precision == "bf16" && macer::bf16_activations() && macer::channels_last() ? "bf16" : "fp32"}};

  if (fl.max >= 0) record.emplace_back("max", std::to_string(fl.max));
  return record;
}

// Prints the table and the JSON of `summaries`, writes --json and --plot when asked.
// world_size > 0: the certification's number of ranks, recorded in the JSON.
void report(const Flags& fl, std::vector<macer::CertifySummary> summaries,
            const std::vector<macer::PlotSeries>& series, int world_size = 0) {
  std::printf("%s\n", macer::summary_table(summaries).c_str());
  // PREDICT summaries have no radii: no radius columns nor curve, their own small table.
  const bool tables = !fl.markdown.empty() || !fl.latex.empty();
  std::string predicted;
  int n_predicted = 0;
  for (const auto& s : summaries)
    if (s.predict) predicted += (n_predicted++ ? ", " : "") + s.label;
  if (n_predicted > 0 && (tables || !fl.plot.empty()))
    std::printf("note: %s %s PREDICT (no radii): left out of the certified-accuracy %s%s%s\n", predicted.c_str(),
                n_predicted > 1 ? "are" : "is", tables ? "table" : "", tables && !fl.plot.empty() ? " and the " : "",
                fl.plot.empty() ? "" : "plot");
  if (n_predicted > 0 && tables)
    std::printf("note: the Markdown and LaTeX tables give PREDICT its own table (accuracy, abstention)\n");
  std::vector<macer::CertifySummary> brief = summaries;  // stdout: the numbers; the record goes to --json
  for (auto& b : brief) b.run.clear();
  std::printf("%s\n", macer::summaries_json(brief, -1).c_str());
  if (!fl.json.empty()) {
    macer::write_file_atomic(fl.json, macer::summaries_json(summaries, 2, world_size) + "\n");
    std::printf("summary: %s\n", fl.json.c_str());
  }
  if (!fl.markdown.empty()) {
    macer::write_file_atomic(fl.markdown, macer::summary_markdown(summaries));
    std::printf("markdown: %s\n", fl.markdown.c_str());
  }
  if (!fl.latex.empty()) {
    macer::write_file_atomic(fl.latex, macer::summary_latex(summaries));
    std::printf("latex: %s\n", fl.latex.c_str());
  }
  if (!fl.plot.empty() && series.empty()) {
    std::printf("note: --plot %s not written: PREDICT results have no radii to draw\n", fl.plot.c_str());
  } else if (!fl.plot.empty()) {
    macer::plot_certified_accuracy(fl.plot, series);
    std::printf("plot: %s\n", fl.plot.c_str());
  }
}

// The radii of the table: --radius-step apart up to --radius-max (by default by sigma).
std::vector<double> table_radii(const Flags& fl, double sigma) {
  return macer::report_radii(fl.radius_step, fl.radius_max > 0 ? fl.radius_max : macer::default_radius_max(sigma));
}

// The record of a finished TSV as the summary's "run" (its path and what its record holds).
std::vector<std::pair<std::string, std::string>> stored_run(const std::string& tsv) {
  std::vector<std::pair<std::string, std::string>> run = {{"results", tsv}};
  for (const auto& [k, v] : macer::read_run_record(tsv))
    if (k != "format") run.emplace_back(k, v);
  return run;
}

// A summary's sigma and training sigma from its TSV's run record (left unknown without one).
void sigma_from_record(macer::CertifySummary& s, const std::string& tsv) {
  auto r = macer::read_run_record(tsv);
  char* end = nullptr;
  if (r.count("sigma") && (s.sigma = std::strtod(r["sigma"].c_str(), &end), *end != '\0')) s.sigma = -1;
  if (r.count("train_sigma") && (s.train_sigma = std::strtod(r["train_sigma"].c_str(), &end), *end != '\0'))
    s.train_sigma = -1;  // "(unknown)"
}

// The largest sigma the records of these TSVs name (0 when none does).
double recorded_sigma(const std::vector<std::string>& tsvs) {
  double sigma = 0;
  for (const auto& t : tsvs) {
    auto r = macer::read_run_record(t);
    if (r.count("sigma")) sigma = std::max(sigma, std::strtod(r["sigma"].c_str(), nullptr));
  }
  return sigma;
}

int summarize_only(const Flags& fl) {
  check_outputs(fl);
  MACER_CHECK(fl.mat.empty(), "--mat is written when certifying, not with --summarize");
  std::vector<macer::CertifySummary> summaries;
  std::vector<macer::PlotSeries> series;
  if (macer::is_shard(fl.summarize[0])) {  // the shards of one run: one merged result
    macer::TsvFile f = macer::merge_shards(fl.summarize);
    // named as its merged file when written (--output all.tsv: "all"), else after its first shard
    std::string label = !fl.output.empty() ? macer::file_label(fl.output)
                                           : macer::file_label(fl.summarize[0]) + " (" +
                                                 std::to_string(fl.summarize.size()) + " shards)";
    if (!fl.output.empty()) {
      std::string text = macer::tsv_header(f.kind) + "\n";
      for (const auto& row : f.rows) text += macer::tsv_row(f.kind, row) + "\n";
      if (f.kind != macer::TsvKind::Predict)  // the full-precision radii first, as the writer does
        macer::write_file_atomic(macer::radii_path(fl.output), macer::radii_text(f.kind, f.rows));
      macer::write_file_atomic(fl.output, text);
      std::printf("merged: %s\n", fl.output.c_str());
    }
    auto merged = macer::summarize_file(f, label, table_radii(fl, recorded_sigma(fl.summarize)));
    for (auto& m : merged) {
      m.run = stored_run(fl.summarize[0]);
      m.run.erase(std::remove_if(m.run.begin(), m.run.end(), [](const auto& kv) { return kv.first == "shard"; }),
                  m.run.end());
      m.run[0].second = fl.output.empty() ? label : fl.output;
      sigma_from_record(m, fl.summarize[0]);
    }
    report(fl, merged, macer::plot_series(f, label));
    return 0;
  }
  MACER_CHECK(fl.output.empty(), "--summarize writes --output only when merging the shards of one run");
  for (size_t i = 0; i < fl.summarize.size(); ++i)  // one file twice would count its images twice
    for (size_t j = 0; j < i; ++j) {
      std::error_code ea, eb;
      const auto a = std::filesystem::weakly_canonical(fl.summarize[i], ea),
                 b = std::filesystem::weakly_canonical(fl.summarize[j], eb);
      MACER_CHECK(fl.summarize[i] != fl.summarize[j] && (ea || eb || a != b),
                  "--summarize: " << fl.summarize[i] << " is given twice (as " << fl.summarize[j] << " too)");
    }
  const std::vector<double> radii = table_radii(fl, recorded_sigma(fl.summarize));
  const std::vector<std::string> labels = macer::file_labels(fl.summarize);
  for (size_t i = 0; i < fl.summarize.size(); ++i) {
    const std::string& path = fl.summarize[i];
    macer::TsvFile f = macer::read_tsv(path);
    const std::string& label = labels[i];
    for (auto& s : macer::summarize_file(f, label, radii)) {
      s.run = stored_run(path);
      sigma_from_record(s, path);
      summaries.push_back(s);
    }
    for (auto& s : macer::plot_series(f, label)) series.push_back(s);
  }
  report(fl, summaries, series);
  return 0;
}

int certify_checkpoint(const Flags& fl) {
  using namespace macer;
  const auto [shard, shards] = parse_shard(fl.shard, "--shard");
  MACER_CHECK(shards == 1 || dist::size() == 1, "--shard splits a run without MPI; under mpirun the ranks share it");
  const bool root = dist::is_root();  // rank 0 opens and writes every output
  std::error_code ec;
  if (root) {
    check_outputs(fl);
    MACER_CHECK(fl.output.empty() || fl.resume || fl.overwrite || !std::filesystem::exists(fl.output, ec),
                "--output " << fl.output << " exists; continue it with --resume or replace it with --overwrite");
  }
  Device device = parse_device(fl.device);
  MACER_CHECK(device != Device::CUDA || cuda_available(),
              "--device cuda: no CUDA device is available (no GPU here, or none its driver can use: "
                  << cuda_unavailable_reason() << "); pass --device cpu (or auto: the GPU when there is one)");
  require_device(device);
  const Precision precision = parse_precision(fl.precision, "--precision");
  check_precision(device, precision);
  set_compute_precision(precision);
  CertifySourceOptions so;
  so.checkpoint = fl.checkpoint, so.model = fl.model, so.normalize = fl.normalize;
  so.dataset = fl.dataset, so.data_dir = fl.data_dir, so.split = fl.split;
  so.sigma = fl.sigma, so.predict = fl.predict, so.image_size = fl.image_size, so.class_order = fl.class_order;
  so.device = device, so.fold_batchnorm = fl.inference == "folded";
  so.other_data = fl.other_data;
  CertifySource src = open_certify_source(so);
  const std::string& dataset = src.dataset;
  const double sigma = src.sigma;
  auto& set = src.set;
  auto& model = src.model;

  CertifyOptions opt;
  opt.sigma = sigma, opt.n0 = fl.n0, opt.n = fl.n, opt.alpha = fl.alpha, opt.batch = fl.batch;
  // Soft certification bounds softmax(beta z): by default the beta the model was trained with.
  double beta = fl.beta > 0 ? fl.beta : src.train_beta > 0 ? src.train_beta : 1.0;
  opt.mode = parse_certify_mode(fl.mode), opt.beta = beta, opt.seed = fl.seed;
  MACER_CHECK(!fl.predict || opt.mode == CertifyMode::Hard, "--predict counts votes: it takes no --mode soft/both");
  MACER_CHECK(!fl.predict || fl.mat.empty(), "--mat holds certified radii: --predict gives none");
  if (int64_t least = smallest_useful_n(opt, fl.predict); opt.n < least) {
    MACER_CHECK(fl.any_n, "--n " << opt.n << " can never " << (fl.predict ? "predict" : "certify")
                                 << " at alpha " << opt.alpha << ": even if all samples agree the "
                                 << (fl.predict ? "p-value" : "bound") << " stays too weak and every row "
                                 << "abstains; use --n " << least << " or more (or --any-n to run anyway)");
    if (root)
      std::fprintf(stderr, "warning: --n %lld can never %s at alpha %g (--any-n)\n", (long long)opt.n,
                   fl.predict ? "predict" : "certify", opt.alpha);
  }
  TsvKind kind = fl.predict ? TsvKind::Predict : opt.mode == CertifyMode::Both ? TsvKind::Both : TsvKind::Certify;
  const int64_t usable = fl.max >= 0 ? std::min(set->size(), fl.max) : set->size();  // Cohen's --max
  std::vector<int64_t> indices = select_images(usable, {fl.start, fl.count, fl.skip});
  const int64_t planned = int64_t(indices.size());
  std::string range_note;  // a range the split cuts short says so on the startup line
  if (fl.count >= 0 && planned < fl.count) {
    std::ostringstream os;
    // the images it does certify: all of them when few (--start 9999 --count 5: image 9999 only)
    os << "; image" << (planned == 1 ? " " : "s ");
    if (planned <= 3)
      for (int64_t j = 0; j < planned; ++j) os << (j ? ", " : "") << indices[size_t(j)];
    else
      os << indices[0] << ", " << indices[1] << ", ... (every " << fl.skip << ")";
    os << ": " << planned << " of the " << fl.count << " asked for, the " << fl.split << " split "
       << (fl.max >= 0 && fl.max < set->size() ? "cut at --max " + std::to_string(fl.max)
                                               : "has " + std::to_string(set->size()) + " images");
    range_note = os.str();
  }
  if (shards > 1) {  // this shard's images: every shards-th of the run's, from the shard-th
    std::vector<int64_t> mine;
    for (int64_t j = shard; j < planned; j += shards) mine.push_back(indices[size_t(j)]);
    MACER_CHECK(!mine.empty(), "--shard " << fl.shard << ": no image of the run's " << planned << " falls to it");
    indices = mine;
  }
  char beta_note[48] = "";
  if (opt.mode != CertifyMode::Hard) std::snprintf(beta_note, sizeof beta_note, ", beta %g", beta);
  if (root)
    std::printf("%s %s on %s%s: %s %s split, sigma %g, n0 %lld, n %lld, alpha %g, batch %lld, mode %s%s%s%s%s\n",
                fl.predict ? "predict" : "certify", fl.checkpoint.c_str(), device_description(device).c_str(),
                dist::size() > 1 ? (" x " + std::to_string(dist::size()) + " ranks").c_str() : "", dataset.c_str(),
                fl.split.c_str(), sigma, (long long)opt.n0, (long long)opt.n, opt.alpha, (long long)opt.batch,
                certify_mode_name(opt.mode), beta_note, src.folded ? ", batch norm folded" : "",
                precision == Precision::BF16 ? ", precision bf16" : "", range_note.c_str());
  if (root && sigma == 0)
    std::printf("note: sigma 0: no noise, so PREDICT gives the plain classifier's prediction for each image\n");
  else if (root && src.train_sigma == 0)
    std::printf("note: %s was trained at sigma 0 (without noise); these are its radii under noise of sigma %g, "
                "which it never saw in training\n", fl.checkpoint.c_str(), sigma);
  if (root && !set->summary().empty()) std::printf("data: %s\n", set->summary().c_str());
  if (root && fl.output.empty())
    std::printf("note: no --output: the per-image rows are kept nowhere and an interrupted run loses its work; "
                "add --output FILE.tsv (then --resume continues it)\n");
  if (root && double(indices.size()) * double(opt.n) >= 1e8)
    std::printf("note: %zu images x n %lld = %.2g noisy forward passes; the progress line shows the rate and ETA "
                "(fewer with --count, --skip or a smaller --n)\n",
                indices.size(), (long long)opt.n, double(indices.size()) * double(opt.n + opt.n0));
  std::fflush(stdout);
  // Every selected image is read whole before the first row (all ranks alike: all fail together).
  data::check_images_readable(*set, indices,
                              "Nothing was certified: fix or remove those files, or choose other images with "
                              "--start/--count/--skip (macer_train CONFIG --check-data lists every bad file)");

  // Everything is valid: only now are outputs opened. --resume keeps the whole rows of the same run.
  std::vector<CertifyRow> rows;
  std::unique_ptr<TsvWriter> writer;
  // What makes the rows (the checkpoint's fingerprint reads it whole: once).
  const std::vector<std::pair<std::string, std::string>> base_record =
      root ? run_record(fl, src, beta) : std::vector<std::pair<std::string, std::string>>{};
  if (root && !fl.output.empty()) {
    auto record = base_record;
    if (shards > 1) record.emplace_back("shard", fl.shard);
    bool resuming = fl.resume && std::filesystem::exists(fl.output, ec);
    if (resuming) {  // the rows must come from the same run; --count may have grown
      check_run_record(fl.output, record);
      rows = rows_to_resume(fl.output, kind, indices);
      std::printf("resume: %zu of %zu images already in %s\n", rows.size(), indices.size(), fl.output.c_str());
      indices.erase(indices.begin(), indices.begin() + int64_t(rows.size()));
    } else if (fl.resume) {  // a typo in the name would otherwise pass unnoticed
      std::printf("note: --resume: %s does not exist yet, so this run starts it\n", fl.output.c_str());
    }
    record.emplace_back("images", std::to_string(planned));  // what the run will hold: for merging shards
    write_run_record(fl.output, record);
    writer = std::make_unique<TsvWriter>(fl.output, kind, resuming);
  }
  std::vector<int64_t> resumed = {int64_t(rows.size())};  // the other ranks skip what rank 0 kept
  dist::broadcast(resumed);
  if (!root) indices.erase(indices.begin(), indices.begin() + resumed[0]);
  std::fflush(stdout);
  if (!indices.empty()) {
    try {
      auto fresh = certify_images(*model, *set, device, opt, indices, fl.predict, writer.get(),
                                  fl.predict ? "predict" : "certify");
      rows.insert(rows.end(), fresh.begin(), fresh.end());
    } catch (const Interrupted& e) {  // Ctrl-C or SIGTERM between two images: the rows written stay
      writer.reset();                 // flushed and closed
      if (isatty(fileno(stderr))) std::fputc('\n', stderr);  // after a progress line
      if (fl.output.empty()) {
        std::fprintf(stderr, "interrupted: nothing is kept (without --output the rows went to stdout only; "
                             "--output FILE keeps each row as it is certified)\n");
      } else {
        std::ifstream in(fl.output);
        int64_t lines = 0;
        for (std::string line; std::getline(in, line);) lines += !line.empty();
        const long long kept = std::max<int64_t>(0, lines - 1);
        std::fprintf(stderr, "interrupted: the %lld row%s written so far %s kept in %s; add --resume to continue\n",
                     kept, kept == 1 ? "" : "s", kept == 1 ? "is" : "are", fl.output.c_str());
      }
      return 128 + e.signal;
    }
  }
  if (!root) return 0;
  TsvFile file{fl.output, kind, rows};
  // The label of tables and legends: the output's name, else the run folder's (a checkpoint
  // named checkpoint.safetensors says little), else the checkpoint's.
  std::string label = !fl.output.empty() ? file_label(fl.output) : file_label(fl.checkpoint);
  if (fl.output.empty() && label == "checkpoint") {
    std::string parent = std::filesystem::absolute(fl.checkpoint, ec).parent_path().filename().string();
    if (!parent.empty()) label = parent;
  }
  if (!fl.output.empty()) std::printf("results: %s\n", fl.output.c_str());
  if (!fl.mat.empty()) {
    write_mat_results(fl.mat, rows, kind, opt.mode == CertifyMode::Soft);
    std::printf("mat: %s\n", fl.mat.c_str());
  }
  auto summaries = summarize_file(file, label, table_radii(fl, sigma));
  auto record = base_record;
  record.insert(record.begin(), {{"results", fl.output}, {"checkpoint_path", fl.checkpoint}});
  record.emplace_back("images", std::to_string(planned));
  if (shards > 1) record.emplace_back("shard", fl.shard);
  for (auto& s : summaries) s.run = record;
  for (auto& s : summaries) s.sigma = sigma, s.train_sigma = src.train_sigma;
  report(fl, summaries, plot_series(file, label), dist::size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  macer::dist::init(&argc, &argv);  // joins an MPI job when launched by mpirun or srun
  CLI::App app{"Certify (Cohen's CERTIFY/PREDICT, MACER's soft bound) a smoothed classifier on data-set images"};
  Flags fl;
  app.add_option("--checkpoint", fl.checkpoint,
                 "safetensors checkpoint, or a macer_train run folder (its checkpoint.safetensors)");
  app.add_option("--model", fl.model, "model name for weights made elsewhere (e.g. converted from PyTorch)");
  app.add_option("--dataset", fl.dataset,
                 "cifar10|mnist|fashion-mnist|svhn|imagefolder|synthetic (imagenet: an alias of imagefolder)");
  app.add_option("--data-dir", fl.data_dir, "folder holding the data set's files");
  app.add_option("--split", fl.split, "test|train")->check(CLI::IsMember({"test", "train"}));
  app.add_option("--image-size", fl.image_size,
                 "imagefolder: crop size (default: the checkpoint's input size, else 224)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--class-order", fl.class_order,
                 "imagefolder: class folders to labels: text (torchvision's) or numeric (default: the checkpoint's)")
      ->check(CLI::IsMember({"auto", "text", "numeric"}));
  app.add_option("--sigma", fl.sigma, "noise level (default: the checkpoint's)")->check(CLI::Range(0.0, 1e3));
  app.add_option("--n0,--N0", fl.n0, "selection samples (default 100)")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--n,--N", fl.n, "estimation samples (default 100000)")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--alpha", fl.alpha, "failure probability (default 0.001)")->check(CLI::Range(1e-300, 0.5));
  app.add_option("--batch", fl.batch, "noisy copies per forward pass (default 1000)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_option("--start", fl.start, "first image (default 0)")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--count", fl.count, "number of images (default: all)")->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  app.add_option("--skip", fl.skip, "take every skip-th image (default 1)")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--max", fl.max, "only images with index below this (Cohen's --max; default: all)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--radius-step", fl.radius_step, "the summary's radii: this far apart (default 0.25)")
      ->check(CLI::Range(1e-3, 1e3));
  app.add_option("--radius-max", fl.radius_max, "the summary's largest radius (default: 2.25, or 4 sigma when larger)")
      ->check(CLI::Range(0.0, 1e4));
  app.add_option("--mode", fl.mode, "hard|soft|both (default hard)")->check(CLI::IsMember({"hard", "soft", "both"}));
  app.add_option("--beta", fl.beta, "soft: softmax(beta * logits) (default: the checkpoint's objective.beta, else 1)")
      ->check(CLI::Range(1e-6, 1e6));
  app.add_flag("--predict", fl.predict, "run PREDICT instead of CERTIFY");
  app.add_flag("--any-n", fl.any_n, "run even when --n is too small to certify anything at --alpha");
  app.add_flag("--other-data", fl.other_data,
               "certify data other than the checkpoint's (another data set or class names) with a warning");
  app.add_option("--output", fl.output, "Cohen's tab-separated results, one row per image, written as it goes");
  auto* resume = app.add_flag("--resume", fl.resume,
                              "continue an interrupted --output: keep its whole rows, certify the images after them");
  app.add_flag("--overwrite", fl.overwrite, "replace an existing --output")->excludes(resume);
  app.add_option("--inference", fl.inference,
                 "folded: batch norms folded into the convolutions (default); model: the network as trained")
      ->check(CLI::IsMember({"folded", "model"}));
  app.add_option("--shard", fl.shard, "I/N: certify every N-th image of the run from its I-th (job arrays, no MPI)");
  app.add_option("--device", fl.device, "cpu|cuda|auto (default auto)")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  app.add_option("--precision", fl.precision,
                 "fp32|bf16: convolutions and linears in bf16 with fp32 accumulation (default fp32; CPU only)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--seed", fl.seed, "noise seed (default 0)");
  app.add_option("--plot", fl.plot, "PNG of certified accuracy against radius");
  app.add_option("--json", fl.json, "write the summary as JSON to this file");
  app.add_option("--markdown", fl.markdown, "write the summary as a Markdown table (Cohen's analyze.py) to this file");
  app.add_option("--latex", fl.latex, "write the summary as a LaTeX tabular (booktabs; Cohen's analyze.py) to this file");
  app.add_option("--mat", fl.mat, "MACER's MATLAB file: 'hard' and/or 'soft', one radius per image, -1 where wrong");
  app.add_option("--normalize", fl.normalize,
                 "with --model: input normalization none|cifar10|imagenet|cifar10-mean|imagenet-mean")
      ->check(CLI::IsMember({"none", "cifar10", "imagenet", "cifar10-mean", "imagenet-mean"}));
  app.add_option("--summarize", fl.summarize, "summarize (and --plot) finished TSV files instead of certifying");
  app.set_version_flag("--version", std::string("macer_certify ") + MACER_VERSION);
  const char* stray =
      "macer_certify takes the checkpoint as --checkpoint FILE or RUN_FOLDER (finished TSVs as --summarize FILE)";
  if (int code = macer::cli::parse(app, argc, argv, stray); code >= 0) return code;
  // Ctrl-C and SIGTERM taken before any thread starts (macer/interrupt.h); under mpirun the defaults
  if (macer::dist::size() == 1) macer::install_interrupt_handlers();
  std::error_code ec;  // --checkpoint RUN_FOLDER: the run's checkpoint in it, as macer_train --resume takes
  if (!fl.checkpoint.empty() && std::filesystem::is_directory(fl.checkpoint, ec))
    fl.checkpoint = (std::filesystem::path(fl.checkpoint) / "checkpoint.safetensors").string();
  return macer::cli::run([&] { return fl.summarize.empty() ? certify_checkpoint(fl) : summarize_only(fl); },
                         "lower --batch");
}
