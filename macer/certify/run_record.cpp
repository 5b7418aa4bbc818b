// macer/run_record.h: the run record as a small JSON file written atomically, and the rows
// of an interrupted TSV cut back to whole lines.
#include "macer/certify/run_record.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
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

namespace {

// The record's keys and values; empty when the file does not exist; throws when it is damaged.
std::map<std::string, std::string> read_record(const std::string& tsv_path) {
  const std::string path = run_record_path(tsv_path);
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  MACER_CHECK(j.is_object() && j.value("format", "") == "macer-certify-run-1",
              path << ": not a run record of macer_certify");
  std::map<std::string, std::string> out;
  for (auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

}  // namespace

std::map<std::string, std::string> read_run_record(const std::string& tsv_path) { return read_record(tsv_path); }

namespace {

int64_t record_int(const std::map<std::string, std::string>& r, const std::string& key, const std::string& path) {
  auto it = r.find(key);
  MACER_CHECK(it != r.end(), run_record_path(path) << ": no '" << key << "'");
  int64_t v = 0;
  const char* end = it->second.data() + it->second.size();
  auto [p, ec] = std::from_chars(it->second.data(), end, v);
  MACER_CHECK(ec == std::errc() && p == end && !it->second.empty(),
              run_record_path(path) << ": '" << key << "' is not an integer");
  return v;
}

// What a record may differ in between an interrupted run and its resumption.
bool may_change_on_resume(const std::string& key) { return key == "images" || key == "format"; }

// A key that records before it existed lack, and the value those runs had.
const char* default_of_missing(const std::string& key) {
  return key == "precision" || key == "activations" ? "fp32" : "(missing)";
}

}  // namespace

void check_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record) {
  std::map<std::string, std::string> stored_record = read_record(tsv_path);
  MACER_CHECK(!stored_record.empty(), "--resume " << tsv_path << ": its run record " << run_record_path(tsv_path)
                                                  << " is missing, so the rows cannot be matched to this run (start "
                                                     "again with --overwrite)");
  for (const auto& [k, v] : record) {
    auto it = stored_record.find(k);
    std::string stored = it != stored_record.end() ? it->second : default_of_missing(k);
    MACER_CHECK(stored == v, "--resume " << tsv_path << ": its rows were made with " << k << " = " << stored
                                         << ", this run has " << v << " (same flags and checkpoint needed)");
  }
  for (const auto& [k, v] : stored_record) {  // and nothing the new run lacks (a --shard, say)
    bool known = may_change_on_resume(k);
    for (const auto& item : record) known = known || item.first == k;
    MACER_CHECK(known, "--resume " << tsv_path << ": its rows were made with " << k << " = " << v
                                   << ", this run has none (same flags and checkpoint needed)");
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
  // Checked before the file is touched: a header of this run's layout.
  MACER_CHECK(whole > 0 && text.compare(0, text.find('\n'), tsv_header(kind)) == 0,
              tsv_path << ": its header is not this run's columns (" << tsv_header(kind)
                       << "); start again with --overwrite");
  if (whole < text.size())  // the half row a kill left: cut it, the image is certified again
    MACER_CHECK(::truncate(tsv_path.c_str(), off_t(whole)) == 0,
                tsv_path << ": cannot cut the unfinished last row: " << std::strerror(errno));
  // The radii file may hold a row the TSV lacks (written first, then killed): cut it to the TSV.
  if (kind != TsvKind::Predict)
    cut_radii(tsv_path, size_t(std::count(text.begin(), text.begin() + std::ptrdiff_t(whole), '\n') - 1));
  TsvFile f = read_tsv(tsv_path);
  MACER_CHECK(f.kind == kind, tsv_path << ": its columns are not those of this run (" << tsv_header(kind) << ")");
  MACER_CHECK(f.rows.size() <= planned.size(),
              tsv_path << ": holds " << f.rows.size() << " rows, more than the " << planned.size() << " images of this run");
  for (size_t i = 0; i < f.rows.size(); ++i)
    MACER_CHECK(f.rows[i].idx == planned[i], tsv_path << ": row " << i + 1 << " is image " << f.rows[i].idx
                                                      << ", this run's image " << i + 1 << " is " << planned[i]);
  return f.rows;
}

bool is_shard(const std::string& tsv_path) { return read_record(tsv_path).count("shard") > 0; }

TsvFile merge_shards(const std::vector<std::string>& paths) {
  MACER_CHECK(!paths.empty(), "no shard files to merge");
  std::map<std::string, std::string> common;
  std::map<int64_t, std::string> shard_files;  // shard number -> file
  int64_t shards = 0;
  TsvFile merged;
  for (const std::string& path : paths) {
    std::map<std::string, std::string> r = read_record(path);
    MACER_CHECK(r.count("shard"), path << ": not a shard of a run (its record " << run_record_path(path)
                                       << " has no 'shard'); summarize shards only with their own kind");
    const auto [i, n] = parse_shard(r["shard"], run_record_path(path));
    r.erase("shard");
    if (common.empty()) {
      common = r, shards = n;
    } else {
      MACER_CHECK(n == shards, path << " is a shard of " << n << ", " << paths[0] << " of " << shards);
      for (const auto& [k, v] : common)
        MACER_CHECK(r.count(k) && r[k] == v, path << " belongs to another run than " << paths[0] << ": " << k << " = "
                                                  << (r.count(k) ? r[k] : "(missing)") << " there, " << v << " here");
    }
    MACER_CHECK(shard_files.emplace(i, path).second,
                "shard " << i << "/" << n << " given twice: " << shard_files[i] << " and " << path);
    TsvFile f = read_tsv(path);
    MACER_CHECK(merged.rows.empty() || f.kind == merged.kind, path << ": columns differ from the other shards'");
    merged.kind = f.kind;
    merged.rows.insert(merged.rows.end(), f.rows.begin(), f.rows.end());
  }
  for (int64_t i = 0; i < shards; ++i)
    MACER_CHECK(shard_files.count(i), "shard " << i << "/" << shards << " is missing (merging " << paths.size()
                                               << " of " << shards << " shards)");
  // Every planned image exactly once: start, start + skip, ... (images of them).
  const int64_t start = record_int(common, "start", paths[0]), skip = record_int(common, "skip", paths[0]);
  const int64_t images = record_int(common, "images", paths[0]);
  std::sort(merged.rows.begin(), merged.rows.end(), [](const CertifyRow& a, const CertifyRow& b) { return a.idx < b.idx; });
  for (size_t j = 0; j < merged.rows.size(); ++j) {
    const int64_t want = start + int64_t(j) * skip, got = merged.rows[j].idx;
    MACER_CHECK(got == want, (got < want ? "image " + std::to_string(got) + " appears twice"
                                         : "image " + std::to_string(want) + " is missing")
                                 << " in the shards (an unfinished shard? resume it first)");
  }
  MACER_CHECK(int64_t(merged.rows.size()) == images, "the shards hold " << merged.rows.size() << " of the run's "
                                                                        << images << " images (an unfinished shard? "
                                                                                     "resume it first)");
  merged.path = paths[0];
  return merged;
}

std::pair<int64_t, int64_t> parse_shard(const std::string& text, const std::string& what) {
  if (text.empty()) return {0, 1};
  int64_t i = -1, n = 0;
  char slash = 0, extra = 0;
  std::istringstream in(text);
  in >> i >> slash >> n;
  MACER_CHECK(in && slash == '/' && !(in >> extra) && n >= 1 && i >= 0 && i < n,
              what << ": shard '" << text << "': expected I/N with 0 <= I < N, e.g. 0/4");
  return {i, n};
}

}  // namespace macer
