// Cohen's TSV rows, their summary (certified accuracy per radius, ACR) and the accuracy-vs-radius
// PNG of macer/certify_report.h; the plot is drawn into an RGB buffer and written by stb.
#include "macer/certify_report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/check.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

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

// ---- writing and reading -----------------------------------------------------------------

TsvWriter::TsvWriter(const std::string& path, TsvKind kind, bool append) : path_(path), kind_(kind) {
  file_ = std::fopen(path.c_str(), append ? "a" : "w");
  MACER_CHECK(file_ != nullptr, "cannot write certification results to " << path << ": " << std::strerror(errno));
  if (append) return;
  std::string header = tsv_header(kind) + "\n";
  bool ok = std::fwrite(header.data(), 1, header.size(), file_) == header.size() && std::fflush(file_) == 0;
  MACER_CHECK(ok, "writing " << path_ << " failed: " << std::strerror(errno));
}

TsvWriter::~TsvWriter() {
  if (file_) std::fclose(file_);
}

void TsvWriter::write(const CertifyRow& row) {
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

// Inverse of format_elapsed: "[N day[s], ]H:MM:SS[.ffffff]" -> seconds; false if malformed.
bool parse_elapsed(std::string s, double* seconds) {
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
  std::ifstream in(path);
  MACER_CHECK(in, "cannot open certification results " << path);
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
  return f;
}

// ---- summaries ---------------------------------------------------------------------------

std::vector<double> report_radii() {
  std::vector<double> r;
  for (int i = 0; i <= 9; ++i) r.push_back(0.25 * i);
  return r;
}

CertifySummary summarize(const std::vector<CertifyRow>& rows, const std::string& label, bool soft,
                         const std::vector<double>& radii) {
  CertifySummary s;
  s.label = label;
  s.images = static_cast<int64_t>(rows.size());
  s.radii = radii;
  s.accuracy.assign(radii.size(), 0.0);
  if (rows.empty()) return s;
  const double n = static_cast<double>(rows.size());
  std::vector<int64_t> certified(radii.size(), 0);
  int64_t abstained = 0;
  double radius_sum = 0, seconds = 0;
  for (const CertifyRow& r : rows) {
    bool correct = soft ? r.soft_correct : r.correct;
    double radius = soft ? r.soft_radius : r.radius;
    // certified accuracy at t: correct and certified at least t; ACR: mean of radius * correct.
    for (size_t i = 0; i < radii.size(); ++i) certified[i] += correct && radius >= radii[i];
    if (correct) radius_sum += radius;
    abstained += (soft ? r.soft_predict : r.predict) == -1;
    seconds += r.seconds;
  }
  for (size_t i = 0; i < radii.size(); ++i) s.accuracy[i] = static_cast<double>(certified[i]) / n;
  s.acr = radius_sum / n;
  s.abstain = static_cast<double>(abstained) / n;
  s.mean_seconds = seconds / n;
  return s;
}

std::string file_label(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = name.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

std::vector<CertifySummary> summarize_file(const TsvFile& file, const std::string& label) {
  if (file.kind != TsvKind::Both) return {summarize(file.rows, label)};
  return {summarize(file.rows, label + " (hard)"), summarize(file.rows, label + " (soft)", true)};
}

std::string summary_table(const std::vector<CertifySummary>& summaries) {
  size_t wl = 5;
  for (const auto& s : summaries) wl = std::max(wl, s.label.size());
  std::ostringstream os;
  char buf[64];
  os << "approximate certified accuracy at radius r; ACR = average certified radius\n";
  os << std::string(wl, ' ');
  if (!summaries.empty())
    for (double r : summaries[0].radii) std::snprintf(buf, sizeof buf, " %6.2f", r), os << buf;
  os << "     ACR  images  abstain   s/img\n";
  for (const auto& s : summaries) {
    os << s.label << std::string(wl - s.label.size(), ' ');
    for (double a : s.accuracy) std::snprintf(buf, sizeof buf, " %6.3f", a), os << buf;
    std::snprintf(buf, sizeof buf, " %7.3f %7lld %8.3f %7.3f\n", s.acr, (long long)s.images, s.abstain,
                  s.mean_seconds);
    os << buf;
  }
  return os.str();
}

namespace {
nlohmann::json to_json(const CertifySummary& s) {
  return {{"label", s.label},   {"images", s.images},   {"radii", s.radii}, {"certified_accuracy", s.accuracy},
          {"acr", s.acr},       {"abstain", s.abstain}, {"mean_seconds", s.mean_seconds}};
}
}  // namespace

std::string summary_json(const CertifySummary& s, int indent) { return to_json(s).dump(indent); }

std::string summaries_json(const std::vector<CertifySummary>& summaries, int indent, int world_size) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& s : summaries) {
    a.push_back(to_json(s));
    if (world_size > 0) a.back()["world_size"] = world_size;
  }
  return a.dump(indent);
}

std::vector<PlotSeries> plot_series(const TsvFile& file, const std::string& label) {
  if (file.kind != TsvKind::Both) return {{label, file.rows, false}};
  return {{label + " (hard)", file.rows, false}, {label + " (soft)", file.rows, true}};
}

// ---- the plot ------------------------------------------------------------------------------

namespace {

// A 5x7 bitmap font: seven rows of five pixels, '#' lit. Lower case prints as upper case.
struct Glyph {
  char c;
  const char* rows;
};
const Glyph kFont[] = {
    {'0', ".###.#...##..###.#.###..##...#.###."}, {'1', "..#...##....#....#....#....#...###."},
    {'2', ".###.#...#....#...#...#...#...#####"}, {'3', "####.....#....#.###.....#....#####."},
    {'4', "...#...##..#.#.#..#.#####...#....#."}, {'5', "######....####.....#....##...#.###."},
    {'6', ".###.#....#....####.#...##...#.###."}, {'7', "#####....#...#...#...#....#....#..."},
    {'8', ".###.#...##...#.###.#...##...#.###."}, {'9', ".###.#...##...#.####....#....#.###."},
    {'A', ".###.#...##...#######...##...##...#"}, {'B', "####.#...##...#####.#...##...#####."},
    {'C', ".###.#...##....#....#....#...#.###."}, {'D', "####.#...##...##...##...##...#####."},
    {'E', "######....#....####.#....#....#####"}, {'F', "######....#....####.#....#....#...."},
    {'G', ".###.#...##....#.####...##...#.####"}, {'H', "#...##...##...#######...##...##...#"},
    {'I', ".###...#....#....#....#....#...###."}, {'J', "..###...#....#....#....#.#..#..##.."},
    {'K', "#...##..#.#.#..##...#.#..#..#.#...#"}, {'L', "#....#....#....#....#....#....#####"},
    {'M', "#...###.###.#.##.#.##...##...##...#"}, {'N', "#...###..##.#.##..###...##...##...#"},
    {'O', ".###.#...##...##...##...##...#.###."}, {'P', "####.#...##...#####.#....#....#...."},
    {'Q', ".###.#...##...##...##.#.##..#..##.#"}, {'R', "####.#...##...#####.#.#..#..#.#...#"},
    {'S', ".#####....#.....###.....#....#####."}, {'T', "#####..#....#....#....#....#....#.."},
    {'U', "#...##...##...##...##...##...#.###."}, {'V', "#...##...##...##...##...#.#.#...#.."},
    {'W', "#...##...##...##.#.##.#.##.#.#.#.#."}, {'X', "#...##...#.#.#...#...#.#.#...##...#"},
    {'Y', "#...##...#.#.#...#....#....#....#.."}, {'Z', "#####....#...#...#...#...#....#####"},
    {'.', "..........................##...##.."}, {'-', "................###................"},
    {'_', "..............................#####"}, {'(', "...#...#...#....#....#.....#.....#."},
    {')', ".#.....#.....#....#....#...#...#..."}, {'/', "....#....#...#...#...#...#....#...."},
    {':', "......##...##.........##...##......"}, {'=', "..........#####.....#####.........."},
    {',', ".....................##....#...#..."}, {'+', ".......#....#..#####..#....#......."},
    {'?', ".###.#...#....#...#...#.........#.."}, {' ', "..................................."},
};

struct Rgb {
  uint8_t r, g, b;
};

struct Canvas {
  int w, h;
  std::vector<uint8_t> px;  // (h, w, 3)
  Canvas(int w_, int h_) : w(w_), h(h_), px(size_t(w_) * h_ * 3, 255) {}
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &px[(size_t(y) * w + x) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void fill(int x0, int y0, int x1, int y1, Rgb c) {  // inclusive corners
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y)
      for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) set(x, y, c);
  }
  // Bresenham's line, each point a thick x thick square.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) {
    int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    for (int err = dx + dy;;) {
      fill(x0, y0, x0 + thick - 1, y0 + thick - 1, c);
      if (x0 == x1 && y0 == y1) break;
      int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  // Text at (x, y) top-left, pixels scaled by `scale`; 6*scale per character.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 2) {
    for (char ch : s) {
      char u = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      const Glyph* g = &kFont[sizeof kFont / sizeof kFont[0] - 2];  // '?'
      for (const Glyph& k : kFont)
        if (k.c == u) g = &k;
      for (int row = 0; row < 7; ++row)
        for (int col = 0; col < 5; ++col)
          if (g->rows[row * 5 + col] == '#')
            fill(x + col * scale, y + row * scale, x + (col + 1) * scale - 1, y + (row + 1) * scale - 1, c);
      x += 6 * scale;
    }
  }
};

int text_width(const std::string& s, int scale = 2) { return static_cast<int>(s.size()) * 6 * scale; }

// matplotlib's "tab10" colours, so the plot reads like Cohen's analyze.py figures.
const Rgb kColours[] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
                        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

}  // namespace

void plot_certified_accuracy(const std::string& png_path, const std::vector<PlotSeries>& series, int width,
                             int height) {
  MACER_CHECK(!series.empty(), "plot: no results to plot");
  MACER_CHECK(width >= 200 && height >= 150, "plot: image " << width << "x" << height << " too small");
  // Each curve: the sorted radii of the correct rows; accuracy(r) = #(radius >= r) / rows.
  std::vector<std::vector<double>> radii(series.size());
  double rmax = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    for (const CertifyRow& r : series[i].rows)
      if (series[i].soft ? r.soft_correct : r.correct) radii[i].push_back(series[i].soft ? r.soft_radius : r.radius);
    std::sort(radii[i].begin(), radii[i].end());
    if (!radii[i].empty() && std::isfinite(radii[i].back())) rmax = std::max(rmax, radii[i].back());
  }
  double xmax = std::max(1.0, 0.5 * std::floor(rmax / 0.5) + 0.5);  // past the last drop
  double step = 0.25;
  while (xmax / step > 10.01) step *= 2;

  Canvas cv(width, height);
  const Rgb black{0, 0, 0}, grid{225, 225, 225}, grey{120, 120, 120};
  const int left = 70, right = 36, top = 40, bottom = 60;
  const int pw = width - left - right, ph = height - top - bottom;
  auto X = [&](double r) { return left + static_cast<int>(std::lround(r / xmax * pw)); };
  auto Y = [&](double a) { return top + ph - static_cast<int>(std::lround(a * ph)); };

  char buf[32];
  for (int i = 0; i <= 5; ++i) {  // y: 0.0, 0.2, ..., 1.0
    double a = 0.2 * i;
    cv.line(left, Y(a), left + pw, Y(a), grid);
    cv.line(left - 5, Y(a), left, Y(a), black);
    std::snprintf(buf, sizeof buf, "%.1f", a);
    cv.text(left - 10 - text_width(buf), Y(a) - 7, buf, black);
  }
  for (int i = 0; i * step <= xmax + 1e-9; ++i) {  // x: every `step`
    double r = i * step;
    cv.line(X(r), top, X(r), top + ph, grid);
    cv.line(X(r), top + ph, X(r), top + ph + 5, black);
    std::snprintf(buf, sizeof buf, step < 1 ? "%.2f" : "%.0f", r);
    cv.text(X(r) - text_width(buf) / 2, top + ph + 10, buf, black);
  }
  cv.line(left, top, left, top + ph, black);
  cv.line(left, top + ph, left + pw, top + ph, black);
  cv.text(left + pw / 2 - text_width("radius") / 2, height - 24, "radius", black);
  cv.text(left, 12, "certified accuracy", black);

  for (size_t i = 0; i < series.size(); ++i) {
    const Rgb c = kColours[i % (sizeof kColours / sizeof kColours[0])];
    const double n = std::max<double>(1, static_cast<double>(series[i].rows.size()));
    int px_prev = 0, py_prev = 0;
    for (int px = 0; px <= pw; ++px) {
      double r = xmax * px / pw;
      auto first = std::lower_bound(radii[i].begin(), radii[i].end(), r);
      int py = Y(static_cast<double>(radii[i].end() - first) / n);
      if (px > 0) cv.line(left + px_prev, py_prev, left + px, py, c, 2);
      px_prev = px, py_prev = py;
    }
  }

  // Legend in the upper right corner: a line sample in each colour and the label.
  size_t longest = 0;
  std::vector<std::string> labels;
  for (const auto& s : series) labels.push_back(s.label.substr(0, 40)), longest = std::max(longest, labels.back().size());
  int lw = text_width(std::string(longest, ' ')) + 50, lh = 22 * static_cast<int>(series.size()) + 8;
  int lx = left + pw - lw - 8, ly = top + 8;
  cv.fill(lx, ly, lx + lw, ly + lh, Rgb{255, 255, 255});
  cv.line(lx, ly, lx + lw, ly, grey), cv.line(lx, ly + lh, lx + lw, ly + lh, grey);
  cv.line(lx, ly, lx, ly + lh, grey), cv.line(lx + lw, ly, lx + lw, ly + lh, grey);
  for (size_t i = 0; i < series.size(); ++i) {
    int y = ly + 8 + 22 * static_cast<int>(i);
    cv.line(lx + 8, y + 6, lx + 34, y + 6, kColours[i % (sizeof kColours / sizeof kColours[0])], 3);
    cv.text(lx + 42, y, labels[i], black);
  }

  std::string png;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  MACER_CHECK(stbi_write_png_to_func(sink, &png, width, height, 3, cv.px.data(), width * 3) != 0,
              "plot: PNG encoding failed");
  write_file_atomic(png_path, png);
}

}  // namespace macer
