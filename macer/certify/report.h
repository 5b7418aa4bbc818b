// Certification reports: Cohen's tab-separated rows (written and read back; certify/tsv.cpp), the
// summary of certified accuracy per radius and ACR (table and JSON; certify/summary.cpp), and a
// PNG plot of accuracy vs radius (certify/plot.cpp).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/atomic_file.h"

namespace macer {

// Columns (tab-separated, header line first, one row per image):
//   Certify: idx label predict radius correct time                  (Cohen's certify.py)
//   Predict: idx label predict correct time                         (Cohen's predict.py)
//   Both:    idx label predict radius correct soft_predict soft_radius soft_correct time
//            (--mode both: the hard certificate, then the soft one from the same samples)
// A soft-only run writes the Certify columns with the soft certificate in them.
// predict is -1 on abstention; correct is 1 or 0; radius like Python's "{:.3}"; time like
// Python's str(datetime.timedelta), e.g. "0:00:01.234567".
enum class TsvKind { Certify, Predict, Both };

struct CertifyRow {
  int64_t idx = 0;
  int label = 0;
  int predict = -1;
  double radius = 0;
  bool correct = false;
  int soft_predict = -1;  // Both only
  double soft_radius = 0;
  bool soft_correct = false;
  double seconds = 0;
};

std::string tsv_header(TsvKind kind);              // without the newline
std::string tsv_row(TsvKind kind, const CertifyRow& row);
std::string format_radius(double r);               // Python "{:.3}".format(r): 0.0, 0.5, 1.23, 1e+02
std::string format_elapsed(double seconds);        // str(timedelta(seconds=s)): 0:00:01.234567

// The full-precision radii beside a TSV ("<tsv>.radii": a header "idx radius [soft_radius]",
// then one line per row, each radius as "%.17g", which reads back to the same double): the
// TSV's "{:.3}" would otherwise leak into resumed runs, --summarize, --json and --mat.
std::string radii_path(const std::string& tsv_path);
// Cuts "<tsv>.radii" (when there is one) to its first `rows` rows (--resume, after the TSV's
// own half row was cut); refuses one that holds fewer rows than the TSV.
void cut_radii(const std::string& tsv_path, size_t rows);
// The text of "<tsv>.radii" for `rows` (merged shards); empty for Predict.
std::string radii_text(TsvKind kind, const std::vector<CertifyRow>& rows);

// Writes the header at once and every row as it comes, flushed, so an interrupted run keeps
// its rows (the one file of the reports that is not written whole by design); the radii file
// gets each row's full-precision radii first, so it never holds fewer rows than the TSV.
class TsvWriter {
 public:
  // `append`: continue a file that already has its header and some rows (--resume).
  TsvWriter(const std::string& path, TsvKind kind, bool append = false);
  ~TsvWriter();
  TsvWriter(const TsvWriter&) = delete;
  TsvWriter& operator=(const TsvWriter&) = delete;
  void write(const CertifyRow& row);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  TsvKind kind_;
  std::FILE* file_ = nullptr;
  std::FILE* radii_ = nullptr;  // "<tsv>.radii" (not for Predict)
};

struct TsvFile {
  std::string path;
  TsvKind kind = TsvKind::Certify;
  std::vector<CertifyRow> rows;
};
// Reads a file in one of the three layouts, its radii from "<tsv>.radii" at full precision when
// that file is there (each must round to the TSV's); malformed input (a bad field, a radius that
// is not finite, an idx given twice, a radii file that disagrees) throws macer::Error naming the
// file and the line. The time column may be this engine's and Cohen's timedelta text
// ("0:00:15.432000", "1 day, 2:03:04") or plain seconds as published TSVs have them ("15.4").
TsvFile read_tsv(const std::string& path);

// The reported radii: 0, step, ..., up to max (0, 0.25, ..., 2.25 by default).
std::vector<double> report_radii(double step = 0.25, double max = 2.25);
// The default largest reported radius for noise level sigma: 2.25 (the papers' Cifar-10
// tables), or 4 sigma where that is larger (sigma 1: radii up to 4, as Cohen's ImageNet plots).
double default_radius_max(double sigma);

struct CertifySummary {
  std::string label;
  bool predict = false;          // a PREDICT file: accuracy and abstention, no radii
  int64_t images = 0;
  // The images summarised: first and last idx (file order) and the step between consecutive
  // ones (0 when the steps differ); -1 when there are none.
  int64_t first_idx = -1, last_idx = -1, step = 0;
  double predict_accuracy = 0;   // PREDICT: fraction of images predicted correctly
  std::vector<double> radii;
  std::vector<double> accuracy;  // approximate certified accuracy: fraction correct with radius >= r
  double acr = 0;                // mean over images of (radius if correct else 0)
  double abstain = 0;            // fraction of images with predict = -1
  double mean_seconds = 0;       // per image
  // The noise level certified at and the checkpoint's training sigma (JSON "sigma",
  // "train_sigma"); < 0: unknown (summaries of TSV files), left out of the JSON.
  double sigma = -1, train_sigma = -1;
  // What was run (the run record: checkpoint, model, sigma, n0, n, alpha, ...), written into
  // the JSON as "run"; empty when unknown.
  std::vector<std::pair<std::string, std::string>> run;
};
// `soft`: use the soft_* columns (Both files).
CertifySummary summarize(const std::vector<CertifyRow>& rows, const std::string& label, bool soft = false,
                         const std::vector<double>& radii = report_radii());
// One summary per certificate in the file: one, or "LABEL (hard)" and "LABEL (soft)" for Both;
// a PREDICT file's is its accuracy and abstention.
std::vector<CertifySummary> summarize_file(const TsvFile& file, const std::string& label,
                                           const std::vector<double>& radii = report_radii());
// The label of a file in tables and legends: its name without folders and extension.
std::string file_label(const std::string& path);
// The labels of several files: file_label each, but "folder/name" for names that more than one
// file has (runs/a/certify.tsv and runs/b/certify.tsv: "a/certify" and "b/certify").
std::vector<std::string> file_labels(const std::vector<std::string>& paths);

// A fixed-width table (one line per summary, a column per radius, then ACR).
std::string summary_table(const std::vector<CertifySummary>& summaries);
// The certified accuracies and ACR as Cohen's analysis code (analyze.py) gives them for papers:
// a Markdown table (a row per summary, a column per radius, then ACR) and a LaTeX tabular
// (booktabs rules); the best value of each column in bold. PREDICT summaries (no radii) are left
// out of that table and follow in their own (accuracy, abstain, images).
std::string summary_markdown(const std::vector<CertifySummary>& summaries);
std::string summary_latex(const std::vector<CertifySummary>& summaries);
// JSON text: an object {label, images, first_idx, last_idx, step (null when irregular), radii,
// certified_accuracy, acr, abstain, mean_seconds, sigma, train_sigma, run}; PREDICT: {label, mode: "predict", images,
// first_idx, last_idx, step, accuracy, abstain, mean_seconds}.
std::string summary_json(const CertifySummary& s, int indent = -1);
// JSON text: an array of such objects; world_size > 0 adds "world_size" (the ranks that
// certified) to each.
std::string summaries_json(const std::vector<CertifySummary>& summaries, int indent = 2, int world_size = 0);

// One curve of the plot: accuracy(r) = fraction of rows correct with radius >= r.
struct PlotSeries {
  std::string label;
  std::vector<CertifyRow> rows;
  bool soft = false;
};
// The curves of a file: one, or "LABEL (hard)" and "LABEL (soft)" for Both; none for PREDICT.
std::vector<PlotSeries> plot_series(const TsvFile& file, const std::string& label);
// An RGB PNG of certified accuracy against radius (x from 0 past the largest certified radius,
// y from 0 to 1), distinct colours, axis ticks and a legend; written whole or not at all.
void plot_certified_accuracy(const std::string& png_path, const std::vector<PlotSeries>& series,
                             int width = 800, int height = 500);

}  // namespace macer
