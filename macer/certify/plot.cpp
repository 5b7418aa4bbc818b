// The accuracy-vs-radius PNG of macer/certify/report.h: drawn into an RGB buffer with a small
// bitmap font, encoded by stb_image_write, written whole.
#include "macer/certify/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "kernels/check.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace macer {

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
