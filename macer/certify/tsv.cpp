// Cohen's tab-separated rows of macer/certify/report.h: Python-compatible formatting of radii
// and times, the writer that flushes row by row, and the reader with its checks.
#include "macer/certify/report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/atomic_file.h"
#include "kernels/check.h"

namespace macer {

// ---- formatting --------------------------------------------------------------------------

std::string format_radius(double r) {
  if (std::isnan(r)) return "nan";
  if (std::isinf(r)) return r > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2e", r);  // the decimal exponent after rounding to 3 digits
  int e = std::atoi(std::strchr(buf, 'e') + 1);
  // Python's "{:.3}" is "%.3g" that keeps a ".0", and so it turns to the exponent form one
  // decade earlier: when e < -4 or e >= precision - 1 = 2 (100.0 -> "1e+02").
  if (e < -4 || e >= 2) {
    std::string s(buf);
    size_t epos = s.find('e');
    std::string mant = s.substr(0, epos);
    while (mant.back() == '0') mant.pop_back();
    if (mant.back() == '.') mant.pop_back();
    return mant + s.substr(epos);
  }
  std::snprintf(buf, sizeof buf, "%.3g", r);
  std::string s(buf);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

std::string format_elapsed(double seconds) {
  // timedelta keeps whole microseconds, rounded half to even (nearbyint's default mode).
  int64_t us = static_cast<int64_t>(std::nearbyint(std::max(0.0, seconds) * 1e6));
  const int64_t day = int64_t(86400) * 1000000;
  int64_t days = us / day;
  us %= day;
  int64_t h = us / 3600000000, m = us / 60000000 % 60, s = us / 1000000 % 60, frac = us % 1000000;
  char buf[96];
  int len = 0;
  if (days > 0) len = std::snprintf(buf, sizeof buf, "%lld day%s, ", (long long)days, days == 1 ? "" : "s");
  len += std::snprintf(buf + len, sizeof buf - len, "%lld:%02lld:%02lld", (long long)h, (long long)m, (long long)s);
  if (frac != 0) std::snprintf(buf + len, sizeof buf - len, ".%06lld", (long long)frac);
  return buf;
}

std::string tsv_header(TsvKind kind) {
  switch (kind) {
    case TsvKind::Certify: return "idx\tlabel\tpredict\tradius\tcorrect\ttime";
    case TsvKind::Predict: return "idx\tlabel\tpredict\tcorrect\ttime";
    case TsvKind::Both:
      return "idx\tlabel\tpredict\tradius\tcorrect\tsoft_predict\tsoft_radius\tsoft_correct\ttime";
  }
  return "";
}

std::string tsv_row(TsvKind kind, const CertifyRow& r) {
  std::ostringstream os;
  os << r.idx << '\t' << r.label << '\t' << r.predict << '\t';
  if (kind != TsvKind::Predict) os << format_radius(r.radius) << '\t';
  os << int(r.correct) << '\t';
  if (kind == TsvKind::Both)
    os << r.soft_predict << '\t' << format_radius(r.soft_radius) << '\t' << int(r.soft_correct) << '\t';
  os << format_elapsed(r.seconds);
  return os.str();
}

// ---- full-precision radii ----------------------------------------------------------------

std::string radii_path(const std::string& tsv_path) { return tsv_path + ".radii"; }

namespace {

std::string radii_header(TsvKind kind) { return kind == TsvKind::Both ? "idx\tradius\tsoft_radius" : "idx\tradius"; }

std::string radii_row(TsvKind kind, const CertifyRow& r) {
  char buf[96];
  if (kind == TsvKind::Both)
    std::snprintf(buf, sizeof buf, "%lld\t%.17g\t%.17g", (long long)r.idx, r.radius, r.soft_radius);
  else
    std::snprintf(buf, sizeof buf, "%lld\t%.17g", (long long)r.idx, r.radius);
  return buf;
}

// The whole lines of "<tsv>.radii" after its header; false when there is no such file.
bool read_radii_lines(const std::string& tsv_path, TsvKind kind, std::vector<std::string>* lines) {
  const std::string path = radii_path(tsv_path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t at = text.find('\n');
  MACER_CHECK(at != std::string::npos && text.compare(0, at, radii_header(kind)) == 0,
              path << ": its header is not '" << radii_header(kind) << "' (remove it to use " << tsv_path
                   << "'s rounded radii)");
  for (size_t start = at + 1, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines->push_back(text.substr(start, end - start));  // a half line (a kill) is left out
  return true;
}

}  // namespace

std::string radii_text(TsvKind kind, const std::vector<CertifyRow>& rows) {
  if (kind == TsvKind::Predict) return "";
  std::string text = radii_header(kind) + "\n";
  for (const auto& r : rows) text += radii_row(kind, r) + "\n";
  return text;
}

void cut_radii(const std::string& tsv_path, size_t rows) {
  std::ifstream probe(radii_path(tsv_path));
  if (!probe) return;
  std::string header;
  std::getline(probe, header);
  TsvKind kind = header == radii_header(TsvKind::Both) ? TsvKind::Both : TsvKind::Certify;
  std::vector<std::string> lines;
  read_radii_lines(tsv_path, kind, &lines);
  MACER_CHECK(lines.size() >= rows, radii_path(tsv_path) << " holds " << lines.size() << " rows, " << tsv_path
                                                         << " " << rows << "; start again with --overwrite");
  std::string text = header + "\n";
  for (size_t i = 0; i < rows; ++i) text += lines[i] + "\n";
  write_file_atomic(radii_path(tsv_path), text);
}

// ---- writing and reading -----------------------------------------------------------------

TsvWriter::TsvWriter(const std::string& path, TsvKind kind, bool append) : path_(path), kind_(kind) {
  file_ = std::fopen(path.c_str(), append ? "a" : "w");
  MACER_CHECK(file_ != nullptr, "cannot write certification results to " << path << ": " << std::strerror(errno));
  std::error_code ec;  // appending to a TSV written before radii files existed: none
  if (kind != TsvKind::Predict && (!append || std::filesystem::exists(radii_path(path), ec))) {
    radii_ = std::fopen(radii_path(path).c_str(), append ? "a" : "w");
    MACER_CHECK(radii_ != nullptr, "cannot write " << radii_path(path) << ": " << std::strerror(errno));
  }
  if (append) return;
  std::string header = tsv_header(kind) + "\n";
  bool ok = std::fwrite(header.data(), 1, header.size(), file_) == header.size() && std::fflush(file_) == 0;
  MACER_CHECK(ok, "writing " << path_ << " failed: " << std::strerror(errno));
  if (radii_) {
    header = radii_header(kind) + "\n";
    ok = std::fwrite(header.data(), 1, header.size(), radii_) == header.size() && std::fflush(radii_) == 0;
    MACER_CHECK(ok, "writing " << radii_path(path_) << " failed: " << std::strerror(errno));
  }
}

TsvWriter::~TsvWriter() {
  if (file_) std::fclose(file_);
  if (radii_) std::fclose(radii_);
}

void TsvWriter::write(const CertifyRow& row) {
  if (radii_) {  // first, so that the radii file never lags the TSV
    std::string line = radii_row(kind_, row) + "\n";
    bool ok = std::fwrite(line.data(), 1, line.size(), radii_) == line.size() && std::fflush(radii_) == 0;
    MACER_CHECK(ok, "writing " << radii_path(path_) << " failed: " << std::strerror(errno));
  }
  std::string line = tsv_row(kind_, row) + "\n";
  bool ok = std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0;
  MACER_CHECK(ok, "writing " << path_ << " failed: " << std::strerror(errno));
}

namespace {

[[noreturn]] void bad_line(const std::string& path, int64_t line, const std::string& why) {
  throw Error("certification results " + path + " line " + std::to_string(line) + ": " + why);
}

std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t tab; (tab = s.find('\t', start)) != std::string::npos; start = tab + 1)
    out.push_back(s.substr(start, tab - start));
  out.push_back(s.substr(start));
  return out;
}

// Inverse of format_elapsed: "[N day[s], ]H:MM:SS[.ffffff]" -> seconds, or plain seconds as a
// decimal ("15.4", "1.5e+01": the published TSVs of Cohen et al.); false if malformed.
bool parse_elapsed(std::string s, double* seconds) {
  if (s.find(':') == std::string::npos) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v) || v < 0) return false;
    *seconds = v;
    return true;
  }
  double days = 0;
  size_t comma = s.find(", ");
  if (comma != std::string::npos) {
    char* end = nullptr;
    days = std::strtod(s.c_str(), &end);
    std::string unit(static_cast<const char*>(end), s.c_str() + comma);
    if (end == s.c_str() || (unit != " day" && unit != " days")) return false;
    s = s.substr(comma + 2);
  }
  int h = 0, m = 0, consumed = 0;
  double sec = 0;
  if (std::sscanf(s.c_str(), "%d:%d:%lf%n", &h, &m, &sec, &consumed) != 3 || consumed != int(s.size()))
    return false;
  *seconds = days * 86400 + h * 3600.0 + m * 60.0 + sec;
  return true;
}

}  // namespace

TsvFile read_tsv(const std::string& path) {
  std::error_code ec;
  MACER_CHECK(!std::filesystem::is_directory(path, ec), "certification results " << path << ": is a folder, not a TSV file");
  std::ifstream in(path);
  MACER_CHECK(in, "cannot open certification results " << path << ": " << std::strerror(errno));
  TsvFile f;
  f.path = path;
  std::string line;
  int64_t lineno = 1;
  if (!std::getline(in, line)) bad_line(path, 1, "empty file (expected the header line)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  bool known = false;
  for (TsvKind k : {TsvKind::Certify, TsvKind::Predict, TsvKind::Both})
    if (line == tsv_header(k)) f.kind = k, known = true;
  if (!known)
    bad_line(path, 1, "header is not one of the layouts of macer_certify (expected e.g. '" +
                          tsv_header(TsvKind::Certify) + "' with tabs)");
  const std::vector<std::string> names = split_tabs(line);
  std::map<int64_t, int64_t> first_line;  // idx -> the line that gave it

  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> v = split_tabs(line);
    if (v.size() != names.size())
      bad_line(path, lineno, "expected " + std::to_string(names.size()) + " tab-separated fields, found " +
                                 std::to_string(v.size()));
    CertifyRow r;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string& name = names[i];
      const char* s = v[i].c_str();
      char* end = nullptr;
      bool ok = !v[i].empty();
      if (name == "time") {
        ok = ok && parse_elapsed(v[i], &r.seconds);
      } else if (name == "radius" || name == "soft_radius") {
        double x = std::strtod(s, &end);
        ok = ok && *end == '\0' && std::isfinite(x);
        (name == "radius" ? r.radius : r.soft_radius) = x;
      } else {
        long long x = std::strtoll(s, &end, 10);
        ok = ok && *end == '\0';
        if (name == "idx") r.idx = x;
        if (name == "label") r.label = int(x);
        if (name == "predict") r.predict = int(x);
        if (name == "soft_predict") r.soft_predict = int(x);
        if (name == "correct" || name == "soft_correct") {
          ok = ok && (x == 0 || x == 1);
          (name == "correct" ? r.correct : r.soft_correct) = x == 1;
        }
      }
      if (!ok) bad_line(path, lineno, "column '" + name + "': cannot read '" + v[i] + "'");
    }
    auto [at, fresh] = first_line.emplace(r.idx, lineno);
    if (!fresh)
      bad_line(path, lineno, "image idx " + std::to_string(r.idx) + " was already given on line " +
                                 std::to_string(at->second) + " (rows of one image counted twice)");
    f.rows.push_back(r);
  }
  // The full-precision radii, when written beside the file: each must round to the TSV's.
  std::vector<std::string> lines;
  if (f.kind != TsvKind::Predict && read_radii_lines(path, f.kind, &lines)) {
    const std::string rpath = radii_path(path);
    for (size_t i = 0; i < f.rows.size() && i < lines.size(); ++i) {
      CertifyRow& r = f.rows[i];
      long long idx = 0;
      double radius = 0, soft = 0;
      char tail = 0;
      int want = f.kind == TsvKind::Both ? 3 : 2;
      int got = f.kind == TsvKind::Both ? std::sscanf(lines[i].c_str(), "%lld\t%lf\t%lf%c", &idx, &radius, &soft, &tail)
                                        : std::sscanf(lines[i].c_str(), "%lld\t%lf%c", &idx, &radius, &tail);
      bool ok = got == want && idx == r.idx && std::isfinite(radius) && std::isfinite(soft) &&
                format_radius(radius) == format_radius(r.radius) &&
                (f.kind != TsvKind::Both || format_radius(soft) == format_radius(r.soft_radius));
      MACER_CHECK(ok, rpath << " line " << i + 2 << " does not match " << path << "'s row " << i + 1
                            << " (image " << r.idx << "); remove " << rpath << " to use the TSV's rounded radii");
      r.radius = radius;
      if (f.kind == TsvKind::Both) r.soft_radius = soft;
    }
  }
  return f;
}

}  // namespace macer
