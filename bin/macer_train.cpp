// bin/macer_train CONFIG.toml [--set section.key=value ...] [--resume PATH | --overwrite]: trains
// with the MACER or Gaussian objective as configured; bad input ends in one `error: ...` line.
#include <CLI/CLI.hpp>

#include "bin/cli.h"
#include <cstdio>

#include <filesystem>

#include "macer/config.h"
#include "macer_version.h"
#include "macer/distributed.h"
#include "macer/train/trainer.h"

int main(int argc, char** argv) {
  macer::dist::init(&argc, &argv);  // joins an MPI job when launched by mpirun or srun
  CLI::App app{"Train a classifier for randomized smoothing with the MACER (or Gaussian) objective"};
  std::string config_path;
  std::vector<std::string> overrides;
  macer::TrainerOptions topt;
  bool print_only = false;
  app.add_option("config", config_path, "TOML configuration file")->required();
  app.add_option("--set", overrides, "override a key: section.key=value (repeatable)");
  auto* resume = app.add_option("--resume", topt.resume, "continue from a checkpoint written by macer_train");
  app.add_flag("--overwrite", topt.overwrite, "replace the run already in run.checkpoint_dir")->excludes(resume);
  app.add_flag("--allow-changes", topt.allow_changes,
               "resume although sigma, data set, input shape or objective differ from the checkpoint's")
      ->needs(resume);
  app.add_flag("--print-config", print_only, "print the resolved configuration and exit");
  app.set_version_flag("--version", std::string("macer_train ") + MACER_VERSION);
  if (int code = macer::cli::parse(app, argc, argv); code >= 0) return code;
  std::error_code ec;  // --resume RUN_FOLDER: the run's checkpoint in it
  if (!topt.resume.empty() && std::filesystem::is_directory(topt.resume, ec))
    topt.resume = (std::filesystem::path(topt.resume) / "checkpoint.safetensors").string();
  return macer::cli::run(
      [&] {
        macer::TrainConfig config = macer::load_train_config(config_path, overrides);
        std::string resolved = macer::to_toml(config);
        if (macer::dist::is_root())
          std::printf("# resolved configuration (%s)\n%s\n", config_path.c_str(), resolved.c_str());
        std::fflush(stdout);
        if (print_only) return 0;
        macer::Trainer trainer(config, topt);
        if (trainer.run().empty()) return 0;  // a resumed run that had already finished
        if (macer::dist::is_root()) std::printf("checkpoint: %s\n", trainer.checkpoint_path().c_str());
        return 0;
      },
      "reduce optim.batch or objective.k");
}
