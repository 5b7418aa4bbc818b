// bench/macer_bench: runs the registered cases (all, or those matching --filter) on one device,
// prints a table (median/min/max, achieved rate, fraction of the measured peak) and JSON.
#include "bin/cli.h"
#include <cstdio>
#include <ctime>
#include <fnmatch.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "bench/harness.h"
#include "macer_version.h"
#include "engine/atomic_file.h"
#include "engine/precision.h"
#include "kernels/check.h"

using namespace macer;
using namespace macer::bench;

namespace {

bool matches(const std::string& name, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  for (const auto& f : filters) {
    bool glob = f.find_first_of("*?[") != std::string::npos;
    if (glob ? fnmatch(f.c_str(), name.c_str(), 0) == 0 : name.find(f) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmark the engine's kernels and whole steps"};
  std::string device_arg = "auto", json_path, precision_arg = "fp32", format_arg = "channels-last",
              activations_arg = "bf16";
  std::vector<std::string> filters;
  Options opt;
  bool list = false, no_peaks = false;
  app.add_option("--device", device_arg, "cpu, cuda or auto");
  app.add_option("--precision", precision_arg, "fp32|bf16: the precision of convolutions and linears (default fp32)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--memory-format", format_arg,
                 "channels-last|contiguous: the CPU activations' order between oneDNN convolutions "
                 "(engine/precision.h; default channels-last)")
      ->check(CLI::IsMember({"channels-last", "contiguous"}));
  app.add_option("--activations", activations_arg,
                 "bf16|fp32: with --precision bf16, the type of the CPU's channels-last activations "
                 "(engine/precision.h bf16_activations; default bf16)")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  app.add_option("--filter,-f", filters, "run cases whose name contains this (or matches this glob)");
  app.add_option("--repeats", opt.repeats, "timed repeats per case")->check(CLI::Range(1, 1000000));
  app.add_option("--warmup", opt.warmup, "untimed calls before timing")->check(CLI::Range(0, 1000000));
  app.add_option("--batch", opt.batch, "override each case's batch size")->check(CLI::Range(0, 1 << 30));
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  app.add_flag("--list", list, "list the cases and exit");
  app.add_flag("--no-peaks", no_peaks, "skip measuring the copy and sgemm peaks");
  app.set_version_flag("--version", std::string("macer_bench ") + MACER_VERSION);
  const char* stray = "macer_bench takes case names as --filter NAME (--list lists them)";
  if (int code = macer::cli::parse(app, argc, argv, stray); code >= 0) return code;
  if (list) {
    for (const auto& c : registry()) std::printf("%-32s %s\n", c.name.c_str(), c.description.c_str());
    return 0;
  }
  return macer::cli::run(
      [&] {
        opt.device = parse_device(device_arg);
        require_device(opt.device);
        const Precision precision = parse_precision(precision_arg, "--precision");
        check_precision(opt.device, precision);
        if (!json_path.empty()) macer::check_writable(json_path, "--json");
        Peaks peaks;
        if (!no_peaks) peaks = measure_peaks(opt);  // fp32: the peaks are the fp32 rates
        set_compute_precision(precision);
        set_channels_last(format_arg == "channels-last");
        set_bf16_activations(activations_arg == "bf16");
        char date[32];
        std::time_t now = std::time(nullptr);
        std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
        char host[256] = {0};
        gethostname(host, sizeof host - 1);
        std::string commit = MACER_VERSION;  // the commit it was built from, wherever it runs
        std::string device_desc = device_description(opt.device);
        // bf16 activations need bf16 precision and channels-last (engine/precision.h)
        const std::string activations =
            precision == Precision::BF16 && format_arg == "channels-last" ? activations_arg : "fp32";
        std::printf("# macer_bench %s | %s | %s | commit %s | precision %s | %s | activations %s | warm-up %d, "
                    "repeats %d\n",
                    date, host, device_desc.c_str(), commit.c_str(), precision_name(precision), format_arg.c_str(),
                    activations.c_str(), opt.warmup, opt.repeats);
        if (!no_peaks)
          std::printf("# measured peaks: copy %.1f GB/s, sgemm %.1f GFLOP/s\n", peaks.bandwidth * 1e-9, peaks.flops * 1e-9);
        std::printf("%-32s %10s %10s %10s %14s %8s %14s  %s\n", "case", "median ms", "min ms", "max ms", "rate",
                    "of peak", "throughput", "note");
        nlohmann::ordered_json results = nlohmann::json::array();
        for (const auto& c : registry()) {
          if (!matches(c.name, filters)) continue;
          Result r = c.run(opt);
          r.name = c.name;
          char rate[32] = "", frac[16] = "", thr[32] = "";
          if (r.flops > 0) {
            std::snprintf(rate, sizeof rate, "%.1f GFLOP/s", r.flops / r.median_s * 1e-9);
            if (peaks.flops > 0) std::snprintf(frac, sizeof frac, "%.0f%%", 100 * r.flops / r.median_s / peaks.flops);
          } else if (r.bytes > 0) {
            std::snprintf(rate, sizeof rate, "%.1f GB/s", r.bytes / r.median_s * 1e-9);
            if (peaks.bandwidth > 0) std::snprintf(frac, sizeof frac, "%.0f%%", 100 * r.bytes / r.median_s / peaks.bandwidth);
          }
          if (r.items > 0) std::snprintf(thr, sizeof thr, "%.0f %s/s", r.items / r.median_s, r.item_unit.c_str());
          std::printf("%-32s %10.3f %10.3f %10.3f %14s %8s %14s  %s\n", c.name.c_str(), r.median_s * 1e3,
                      r.min_s * 1e3, r.max_s * 1e3, rate, frac, thr, r.note.c_str());
          std::fflush(stdout);
          results.push_back({{"name", c.name}, {"median_s", r.median_s}, {"min_s", r.min_s}, {"max_s", r.max_s},
                             {"repeats", r.repeats}, {"flops", r.flops}, {"bytes", r.bytes}, {"items", r.items},
                             {"item_unit", r.item_unit}, {"note", r.note}});
        }
        if (!json_path.empty()) {
          nlohmann::ordered_json doc = {{"date", date}, {"machine", host}, {"device", device_desc},
                                        {"device_kind", device_name(opt.device)}, {"commit", commit},
                                        {"precision", precision_name(precision)}, {"memory_format", format_arg},
                                        {"activations", activations},
                                        {"warmup", opt.warmup}, {"repeats", opt.repeats},
                                        {"peak_bandwidth_bytes_per_s", peaks.bandwidth},
                                        {"peak_flops_per_s", peaks.flops}, {"results", results}};
          macer::write_file_atomic(json_path, doc.dump(2) + "\n");
        }
        return 0;
      },
      "lower --batch");
}
