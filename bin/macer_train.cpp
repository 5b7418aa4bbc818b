// bin/macer_train CONFIG.toml [--set section.key=value ...] [--resume PATH | --overwrite]: trains
// with Gaussian noise, MACER, SmoothAdv, Consistency or SmoothMix as configured; bad input ends in
// one `error: ...` line.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include "bin/cli.h"
#include <cstdio>

#include <filesystem>

#include "data/dataset.h"
#include "kernels/check.h"
#include "macer/config.h"
#include "macer_version.h"
#include "macer/distributed.h"
#include "macer/interrupt.h"
#include "macer/train/trainer.h"

namespace {

// --check-data: every image of the train split (and of the test split where there is one) read
// as training would read it; every bad file listed on its own line.
int check_all_images(const macer::TrainConfig& config) {
  int64_t bad = 0, total = 0;
  for (const char* split : {"train", "test"}) {
    std::unique_ptr<macer::data::Dataset> set;
    try {
      set = macer::open_training_split(config, split);
    } catch (const macer::Error& e) {
      if (std::string(split) == "train") throw;
      // A test split is optional for training: said, not counted.
      std::printf("check-data: test split not opened (%s)\n", e.what());
      continue;
    }
    if (!set->summary().empty()) std::printf("data: %s\n", set->summary().c_str());
    std::vector<int64_t> all(size_t(set->size()));
    for (int64_t i = 0; i < set->size(); ++i) all[size_t(i)] = i;
    const std::vector<std::string> problems = macer::data::find_unreadable_images(*set, all);
    for (const auto& p : problems) std::printf("bad: %s\n", p.c_str());
    std::printf("check-data: %s split: %lld images, %zu bad%s\n", split, (long long)set->size(), problems.size(),
                set->in_memory() ? " (held in memory: checked whole when opened)" : "");
    bad += int64_t(problems.size()), total += set->size();
  }
  std::fflush(stdout);
  MACER_CHECK(bad == 0, bad << " of " << total << " images cannot be read (listed above as 'bad:'); fix or remove"
                            << " those files");
  return 0;
}

// A word as the shell reads it back: as it is when plain, else in single quotes.
std::string shell_word(const std::string& w) {
  const char* plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@";
  if (!w.empty() && w.find_first_not_of(plain) == std::string::npos) return w;
  std::string out = "'";
  for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

int main(int argc, char** argv) {
  macer::dist::init(&argc, &argv);  // joins an MPI job when launched by mpirun or srun
  CLI::App app{"Train a classifier for randomized smoothing: Gaussian noise (Cohen et al.), MACER, SmoothAdv "
               "(attack.name = \"pgd\"), Consistency or SmoothMix, as the config's [objective] and [attack] say"};
  std::string config_path;
  std::vector<std::string> overrides;
  macer::TrainerOptions topt;
  bool print_only = false, check_data = false;
  app.add_option("config", config_path, "TOML configuration file")->required();
  app.add_option("--set", overrides, "override a key: section.key=value (repeatable)");
  std::string precision;
  app.add_option("--precision", precision, "fp32|bf16: the same as --set run.precision=...")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  auto* resume = app.add_option("--resume", topt.resume, "continue from a checkpoint written by macer_train");
  app.add_flag("--overwrite", topt.overwrite, "replace the run already in run.checkpoint_dir")->excludes(resume);
  app.add_flag("--allow-changes", topt.allow_changes,
               "resume although the data set, input shape or class count, objective, attack, sigma or input "
               "normalization differ from the checkpoint's (another model or precision is always refused)")
      ->needs(resume);
  app.add_flag("--print-config", print_only, "print the resolved configuration and exit");
  app.add_flag("--check-data", check_data,
               "read every image of the data set's splits whole, list each bad file, and exit (1 when any is bad)");
  app.set_version_flag("--version", std::string("macer_train ") + MACER_VERSION);
  const char* stray = "macer_train takes one config file, then flags (--set section.key=value changes a key)";
  if (int code = macer::cli::parse(app, argc, argv, stray); code >= 0) return code;
  // Ctrl-C and SIGTERM taken before any thread starts (macer/interrupt.h); under mpirun the defaults
  if (macer::dist::size() == 1) macer::install_interrupt_handlers();
  std::error_code ec;  // --resume RUN_FOLDER: the run's checkpoint in it
  if (!topt.resume.empty() && std::filesystem::is_directory(topt.resume, ec))
    topt.resume = (std::filesystem::path(topt.resume) / "checkpoint.safetensors").string();
  return macer::cli::run(
      [&] {
        if (!precision.empty()) overrides.push_back("run.precision=" + precision);
        if (!topt.resume.empty()) {  // a missing checkpoint is named before the configuration is read
          const std::filesystem::path r(topt.resume), folder = r.parent_path();
          std::error_code e;
          MACER_CHECK(std::filesystem::exists(r, e) ||
                          (r.filename() == "checkpoint.safetensors" && std::filesystem::is_directory(folder, e)),
                      "--resume " << topt.resume << ": no such file or folder");
          MACER_CHECK(std::filesystem::exists(r, e),
                      "--resume " << folder.string() << ": no checkpoint.safetensors in it yet (the run stopped "
                                  "before its first checkpoint; run.checkpoint_every sets how often they are "
                                  "written): start it again with --overwrite");
        }
        macer::TrainConfig config = macer::load_train_config(config_path, overrides);
        auto print_resolved = [&] {
          if (macer::dist::is_root())
            std::printf("# resolved configuration (%s)\n%s\n", config_path.c_str(), macer::to_toml(config).c_str());
          std::fflush(stdout);
        };
        if (print_only) return print_resolved(), 0;
        if (check_data) return check_all_images(config);
        // Printed once the data, model and checkpoint are open, so that a refusal of any of them is
        // the output's one line rather than a line under the 50 of the configuration.
        macer::Trainer trainer(config, topt);
        print_resolved();
        try {
          if (trainer.run().empty()) return 0;  // a resumed run that had already finished
        } catch (const macer::Interrupted& e) {
          // Ctrl-C or SIGTERM between two steps: say what the folder keeps and how to go on.
          std::string again = shell_word(argv[0]) + " " + shell_word(config_path);  // as the user ran it
          for (const std::string& o : overrides) again += " --set " + shell_word(o);
          const std::string& dir = config.run.checkpoint_dir;
          if (isatty(fileno(stderr))) std::fputc('\n', stderr);  // after a progress line
          if (trainer.checkpoint_epoch() > 0)
            std::fprintf(stderr, "interrupted: %s keeps the checkpoint of epoch %ld; continue with %s --resume %s\n",
                         dir.c_str(), long(trainer.checkpoint_epoch()), again.c_str(), shell_word(dir).c_str());
          else
            std::fprintf(stderr, "interrupted: nothing of this run was kept in %s (no checkpoint was written yet); "
                                 "start it again with %s --overwrite\n", dir.c_str(), again.c_str());
          return 128 + e.signal;
        }
        if (macer::dist::is_root()) std::printf("checkpoint: %s\n", trainer.checkpoint_path().c_str());
        return 0;
      },
      "reduce optim.batch or objective.k");
}
