// The summaries of macer/certify/report.h: approximate certified accuracy per radius and ACR,
// as a table and as JSON.
#include "macer/certify/report.h"

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace macer {

// ---- summaries ---------------------------------------------------------------------------

std::vector<double> report_radii(double step, double max) {
  std::vector<double> r;
  for (int i = 0; step * i <= max + 1e-9 * step; ++i) r.push_back(step * i);
  return r;
}

double default_radius_max(double sigma) { return std::max(2.25, 4 * sigma); }

CertifySummary summarize(const std::vector<CertifyRow>& rows, const std::string& label, bool soft,
                         const std::vector<double>& radii) {
  CertifySummary s;
  s.label = label;
  s.images = static_cast<int64_t>(rows.size());
  if (!rows.empty()) {
    s.first_idx = rows.front().idx, s.last_idx = rows.back().idx;
    s.step = rows.size() > 1 ? rows[1].idx - rows[0].idx : 1;
    for (size_t i = 1; i < rows.size(); ++i)
      if (rows[i].idx - rows[i - 1].idx != s.step) s.step = 0;
  }
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

std::vector<std::string> file_labels(const std::vector<std::string>& paths) {
  std::vector<std::string> names, labels;
  for (const std::string& p : paths) names.push_back(file_label(p));
  labels = names;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (std::count(names.begin(), names.end(), names[i]) < 2) continue;
    const std::string folder = std::filesystem::path(paths[i]).parent_path().filename().string();
    if (!folder.empty()) labels[i] = folder + "/" + file_label(paths[i]);
  }
  return labels;
}

std::vector<CertifySummary> summarize_file(const TsvFile& file, const std::string& label,
                                           const std::vector<double>& radii) {
  if (file.kind == TsvKind::Predict) {  // no radii: the accuracy of the predictions
    CertifySummary s = summarize(file.rows, label, false, {});
    s.predict = true;
    int64_t correct = 0;
    for (const CertifyRow& r : file.rows) correct += r.correct;
    s.predict_accuracy = file.rows.empty() ? 0.0 : double(correct) / double(file.rows.size());
    s.acr = 0;
    return {s};
  }
  if (file.kind != TsvKind::Both) return {summarize(file.rows, label, false, radii)};
  return {summarize(file.rows, label + " (hard)", false, radii), summarize(file.rows, label + " (soft)", true, radii)};
}

std::string summary_table(const std::vector<CertifySummary>& summaries) {
  size_t wl = 5;
  for (const auto& s : summaries) wl = std::max(wl, s.label.size());
  std::ostringstream os;
  char buf[64];
  std::vector<CertifySummary> certified, predicted;
  for (const auto& s : summaries) (s.predict ? predicted : certified).push_back(s);
  if (!predicted.empty()) {
    os << "PREDICT: accuracy of the smoothed classifier's predictions (abstentions count as wrong)\n";
    os << std::string(wl, ' ') << " accuracy  images  abstain   s/img\n";
    for (const auto& s : predicted) {
      std::snprintf(buf, sizeof buf, " %8.3f %7lld %8.3f %7.3f\n", s.predict_accuracy, (long long)s.images, s.abstain,
                    s.mean_seconds);
      os << s.label << std::string(wl - s.label.size(), ' ') << buf;
    }
    if (certified.empty()) return os.str();
  }
  os << "approximate certified accuracy at radius r; ACR = average certified radius\n";
  os << std::string(wl, ' ');
  if (!certified.empty())
    for (double r : certified[0].radii) std::snprintf(buf, sizeof buf, " %6.2f", r), os << buf;
  os << "     ACR  images  abstain   s/img\n";
  for (const auto& s : certified) {
    os << s.label << std::string(wl - s.label.size(), ' ');
    for (double a : s.accuracy) std::snprintf(buf, sizeof buf, " %6.3f", a), os << buf;
    std::snprintf(buf, sizeof buf, " %7.3f %7lld %8.3f %7.3f\n", s.acr, (long long)s.images, s.abstain,
                  s.mean_seconds);
    os << buf;
  }
  return os.str();
}

namespace {

// The best value of column j (accuracies, then ACR as the last column) over the summaries.
double column_best(const std::vector<CertifySummary>& summaries, size_t j) {
  double best = -1;
  for (const auto& s : summaries) best = std::max(best, j < s.accuracy.size() ? s.accuracy[j] : s.acr);
  return best;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A label in LaTeX: its special characters escaped.
std::string latex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("&%$#_{}").find(c) != std::string::npos) out += '\\', out += c;
    else if (c == '~') out += "\\textasciitilde{}";
    else if (c == '^') out += "\\textasciicircum{}";
    else if (c == '\\') out += "\\textbackslash{}";
    else out += c;
  }
  return out;
}

}  // namespace

namespace {

// The summaries of certificates (radii) and of PREDICT files (accuracy, abstention), apart.
void split_predict(const std::vector<CertifySummary>& all, std::vector<CertifySummary>* certified,
                   std::vector<CertifySummary>* predicted) {
  for (const auto& s : all) (s.predict ? predicted : certified)->push_back(s);
}

}  // namespace

std::string summary_markdown(const std::vector<CertifySummary>& all) {
  std::vector<CertifySummary> summaries, predicted;
  split_predict(all, &summaries, &predicted);
  std::ostringstream os;
  if (!summaries.empty()) {
    const auto& radii = summaries[0].radii;
    os << "|  |";
    for (double r : radii) os << " r = " << fixed(r, 2) << " |";
    os << " ACR |\n| --- |";
    for (size_t j = 0; j <= radii.size(); ++j) os << " --- |";
    os << "\n";
    for (const auto& s : summaries) {
      os << "| " << s.label << " |";
      for (size_t j = 0; j <= radii.size(); ++j) {
        double v = j < s.accuracy.size() ? s.accuracy[j] : s.acr;
        std::string t = fixed(v, j < radii.size() ? 2 : 3);
        os << " " << (summaries.size() > 1 && v == column_best(summaries, j) ? "**" + t + "**" : t) << " |";
      }
      os << "\n";
    }
  }
  if (!predicted.empty()) {  // PREDICT has no radii: the smoothed classifier's accuracy and abstention
    if (!summaries.empty()) os << "\n";
    os << "| PREDICT | accuracy | abstain | images |\n| --- | --- | --- | --- |\n";
    for (const auto& s : predicted)
      os << "| " << s.label << " | " << fixed(s.predict_accuracy, 3) << " | " << fixed(s.abstain, 3) << " | "
         << s.images << " |\n";
  }
  return os.str();
}

std::string summary_latex(const std::vector<CertifySummary>& all) {
  std::vector<CertifySummary> summaries, predicted;
  split_predict(all, &summaries, &predicted);
  std::ostringstream os;
  if (!summaries.empty()) {
    const auto& radii = summaries[0].radii;
    os << "\\begin{tabular}{l" << std::string(radii.size() + 1, 'c') << "}\n\\toprule\n";
    for (double r : radii) os << " & $r = " << fixed(r, 2) << "$";
    os << " & ACR \\\\\n\\midrule\n";
    for (const auto& s : summaries) {
      os << latex_escape(s.label);
      for (size_t j = 0; j <= radii.size(); ++j) {
        double v = j < s.accuracy.size() ? s.accuracy[j] : s.acr;
        std::string t = fixed(v, j < radii.size() ? 2 : 3);
        os << " & " << (summaries.size() > 1 && v == column_best(summaries, j) ? "\\textbf{" + t + "}" : t);
      }
      os << " \\\\\n";
    }
    os << "\\bottomrule\n\\end{tabular}\n";
  }
  if (!predicted.empty()) {
    if (!summaries.empty()) os << "\n";
    os << "\\begin{tabular}{lccc}\n\\toprule\nPREDICT & accuracy & abstain & images \\\\\n\\midrule\n";
    for (const auto& s : predicted)
      os << latex_escape(s.label) << " & " << fixed(s.predict_accuracy, 3) << " & " << fixed(s.abstain, 3) << " & "
         << s.images << " \\\\\n";
    os << "\\bottomrule\n\\end{tabular}\n";
  }
  return os.str();
}

namespace {
// A record value as JSON: a number when the whole text is one, else the text.
nlohmann::json record_value(const std::string& v) {
  char* end = nullptr;
  if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos && v.size() < 16)
    return std::stoll(v);
  double d = std::strtod(v.c_str(), &end);
  if (!v.empty() && end == v.c_str() + v.size() && std::isfinite(d) && v.find_first_of("0123456789") == 0) return d;
  return v;
}

nlohmann::json to_json(const CertifySummary& s) {
  nlohmann::json step = s.step != 0 ? nlohmann::json(s.step) : nlohmann::json(nullptr);
  nlohmann::json j;
  if (s.predict)
    j = {{"label", s.label},         {"mode", "predict"},      {"images", s.images},
         {"first_idx", s.first_idx}, {"last_idx", s.last_idx}, {"step", step},
         {"accuracy", s.predict_accuracy}, {"abstain", s.abstain}, {"mean_seconds", s.mean_seconds}};
  else
    j = {{"label", s.label},         {"images", s.images},     {"first_idx", s.first_idx},
         {"last_idx", s.last_idx},   {"step", step},           {"radii", s.radii},
         {"certified_accuracy", s.accuracy}, {"acr", s.acr},   {"abstain", s.abstain},
         {"mean_seconds", s.mean_seconds}};
  if (s.sigma >= 0) j["sigma"] = s.sigma;
  if (s.train_sigma >= 0) j["train_sigma"] = s.train_sigma;
  if (!s.run.empty()) {
    nlohmann::json run = nlohmann::json::object();
    for (const auto& [k, v] : s.run) run[k] = record_value(v);
    j["run"] = run;
  }
  return j;
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
  if (file.kind == TsvKind::Predict) return {};  // no radii: no curve
  if (file.kind != TsvKind::Both) return {{label, file.rows, false}};
  return {{label + " (hard)", file.rows, false}, {label + " (soft)", file.rows, true}};
}

}  // namespace macer
