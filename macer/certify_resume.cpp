// macer/certify_resume.h: the run record as a small JSON file written atomically, and the rows
// of an interrupted TSV cut back to whole lines.
#include "macer/certify_resume.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/atomic_file.h"
#include "kernels/check.h"

namespace macer {

std::string run_record_path(const std::string& tsv_path) { return tsv_path + ".run.json"; }

std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MACER_CHECK(in, path << ": cannot open: " << std::strerror(errno));
  uint64_t h = 0xcbf29ce484222325ull, size = 0;  // FNV-1a offset basis
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    std::streamsize got = in.gcount();
    for (std::streamsize i = 0; i < got; ++i) h = (h ^ uint8_t(buf[size_t(i)])) * 0x100000001b3ull;  // FNV prime
    size += uint64_t(got);
  }
  std::ostringstream os;
  os << std::hex << h << std::dec << " (" << size << " bytes)";
  return os.str();
}

void write_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["format"] = "macer-certify-run-1";
  for (const auto& [k, v] : record) j[k] = v;
  write_file_atomic(run_record_path(tsv_path), j.dump(2) + "\n");
}

void check_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record) {
  const std::string path = run_record_path(tsv_path);
  std::ifstream in(path);
  MACER_CHECK(in, "--resume " << tsv_path << ": its run record " << path
                              << " is missing, so the rows cannot be matched to this run (start again with --overwrite)");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  MACER_CHECK(j.is_object() && j.value("format", "") == "macer-certify-run-1",
              path << ": not a run record of macer_certify");
  for (const auto& [k, v] : record) {
    std::string stored = j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "(missing)";
    MACER_CHECK(stored == v, "--resume " << tsv_path << ": its rows were made with " << k << " = " << stored
                                         << ", this run has " << v << " (same flags and checkpoint needed)");
  }
}

std::vector<CertifyRow> rows_to_resume(const std::string& tsv_path, TsvKind kind, const std::vector<int64_t>& planned) {
  std::string text;
  {
    std::ifstream in(tsv_path, std::ios::binary);
    MACER_CHECK(in, tsv_path << ": cannot open: " << std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  size_t whole = text.rfind('\n');
  whole = whole == std::string::npos ? 0 : whole + 1;
  if (whole < text.size())  // the half row a kill left: cut it, the image is certified again
    MACER_CHECK(::truncate(tsv_path.c_str(), off_t(whole)) == 0,
                tsv_path << ": cannot cut the unfinished last row: " << std::strerror(errno));
  MACER_CHECK(whole > 0, tsv_path << ": no header line; start again with --overwrite");
  TsvFile f = read_tsv(tsv_path);
  MACER_CHECK(f.kind == kind, tsv_path << ": its columns are not those of this run (" << tsv_header(kind) << ")");
  MACER_CHECK(f.rows.size() <= planned.size(),
              tsv_path << ": holds " << f.rows.size() << " rows, more than the " << planned.size() << " images of this run");
  for (size_t i = 0; i < f.rows.size(); ++i)
    MACER_CHECK(f.rows[i].idx == planned[i], tsv_path << ": row " << i + 1 << " is image " << f.rows[i].idx
                                                      << ", this run's image " << i + 1 << " is " << planned[i]);
  return f.rows;
}

}  // namespace macer
