// Tests of macer/certify/smoothing and macer/certify/report: CERTIFY's soundness on a linear classifier
// whose smoothed probability and radius are known, PREDICT, soft mode, Cohen's TSV, summary, plot.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "macer/certify/bounds.h"
#include "macer/certify/report.h"
#include "macer/certify/smoothing.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

using namespace macer;

namespace {

constexpr int kD = 16;  // the image is (1, 4, 4)

// Logits (m, 2) = [w.x + b, 0]: class 0 iff w.x + b > 0. Under x + N(0, sigma^2 I) the margin
// w.x + b is N(margin, sigma^2 |w|^2), so P(class 0) = Phi(margin / (sigma |w|)) and the smoothed
// classifier's true L2 radius is sigma Phi^-1(P) = margin / |w|.
BaseClassifier linear_classifier(const std::vector<float>& w, float b, int* calls = nullptr) {
  return [w, b, calls](const Tensor& x) {
    if (calls) ++*calls;
    int64_t m = x.dim(0), d = x.numel() / m;
    Tensor z = Tensor::empty({m, 2});
    const float* px = x.data();
    float* pz = z.data();
    for (int64_t r = 0; r < m; ++r) {
      double s = b;
      for (int64_t e = 0; e < d; ++e) s += double(w[e]) * px[r * d + e];
      pz[2 * r] = static_cast<float>(s);
      pz[2 * r + 1] = 0.0f;
    }
    return z;
  };
}

// w with |w| = 1 (entries +-1/4), the image all zeros: margin = b, true radius = b.
std::vector<float> unit_w() {
  std::vector<float> w(kD);
  for (int e = 0; e < kD; ++e) w[e] = (e % 3 == 0 ? -0.25f : 0.25f);
  return w;
}
Tensor zero_image() { return Tensor::zeros({1, 4, 4}); }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tmp_dir() {
  std::string d = std::string(MACER_BINARY_DIR) + "/tests/certify_tmp";
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace

TEST_CASE("certify is sound for a linear classifier: radius > true radius in at most ~alpha of trials",
          "[certify]") {
  const double sigma = 0.5, margin = 0.5, alpha = 0.05;  // pA = Phi(1) = 0.8413, true radius 0.5
  BaseClassifier f = linear_classifier(unit_w(), float(margin));
  CertifyOptions opt;
  opt.sigma = sigma, opt.n0 = 32, opt.n = 500, opt.alpha = alpha, opt.batch = 128;
  const int trials = 400;
  int violations = 0, abstains = 0;
  for (int t = 0; t < trials; ++t) {
    opt.seed = 1000 + t;
    CertifyResult r = certify(f, zero_image(), 2, opt, uint64_t(t));
    if (r.hard.prediction == -1) ++abstains;
    if (r.hard.prediction == 1 || (r.hard.prediction == 0 && r.hard.radius > margin)) ++violations;
  }
  // With violation probability <= alpha = 0.05, P(Bin(400, 0.05) > 40) = 1.4e-5
  // (scipy.stats.binom.sf(40, 400, 0.05)); Clopper-Pearson is conservative, so fewer are seen.
  INFO("violations " << violations << " of " << trials << ", abstentions " << abstains);
  CHECK(violations <= 40);
  CHECK(violations >= 1);  // the bound is tight enough to be wrong sometimes, as it should be
  CHECK(abstains == 0);
}

TEST_CASE("the certified radius approaches the true radius as n grows", "[certify]") {
  const double sigma = 0.5, margin = 0.5;
  BaseClassifier f = linear_classifier(unit_w(), float(margin));
  CertifyOptions opt;
  opt.sigma = sigma, opt.n0 = 100, opt.alpha = 0.001, opt.batch = 5000;
  std::vector<double> gaps;
  for (int64_t n : {1000, 10000, 100000}) {
    opt.n = n;
    double mean = 0;
    for (int t = 0; t < 5; ++t) {
      opt.seed = 7 + t;
      CertifyResult r = certify(f, zero_image(), 2, opt, uint64_t(t));
      REQUIRE(r.hard.prediction == 0);
      CHECK(r.counts[0] + r.counts[1] == n);
      CHECK(r.counts0[0] + r.counts0[1] == 100);
      CHECK(r.hard.radius == Approx(sigma * normal_quantile(r.hard.p_lower)));
      mean += r.hard.radius / 5;
    }
    gaps.push_back(margin - mean);
  }
  INFO("gaps " << gaps[0] << " " << gaps[1] << " " << gaps[2]);
  CHECK(gaps[0] > gaps[1]);
  CHECK(gaps[1] > gaps[2]);
  CHECK(gaps[2] > 0);
  CHECK(gaps[2] < 0.02);  // expected about 0.008 at n = 1e5, alpha = 1e-3
}

TEST_CASE("certify abstains when pA < 1/2 and predicts the other class across the boundary", "[certify]") {
  CertifyOptions opt;
  opt.sigma = 0.5, opt.n0 = 100, opt.n = 2000, opt.batch = 1000;
  for (int t = 0; t < 10; ++t) {
    opt.seed = t;
    CertifyResult r = certify(linear_classifier(unit_w(), 0.0f), zero_image(), 2, opt, uint64_t(t));
    CHECK(r.hard.prediction == -1);  // pA = 1/2 exactly, so its lower bound is below 1/2
    CHECK(r.hard.radius == 0.0);
    CHECK(r.hard.p_lower < 0.5);
  }
  opt.seed = 3;
  CertifyResult r = certify(linear_classifier(unit_w(), -0.5f), zero_image(), 2, opt, 0);
  CHECK(r.hard.prediction == 1);
  CHECK(r.hard.radius > 0.3);
  CHECK(r.hard.radius < 0.5);
}

TEST_CASE("certify draws reproducible, distinct noise and checks its arguments", "[certify]") {
  int calls = 0;
  BaseClassifier f = linear_classifier(unit_w(), 0.2f, &calls);
  CertifyOptions opt;
  opt.sigma = 0.5, opt.n0 = 50, opt.n = 1000, opt.batch = 300, opt.seed = 42;
  CertifyResult a = certify(f, zero_image(), 2, opt, 5);
  CHECK(calls == 1 + 4);  // one batch of 50, then 300 + 300 + 300 + 100
  CertifyResult b = certify(f, zero_image(), 2, opt, 5);
  CHECK(a.counts == b.counts);
  CHECK(a.counts0 == b.counts0);
  CertifyResult c = certify(f, zero_image(), 2, opt, 6);  // another image index: other draws
  CHECK(c.counts != a.counts);

  CHECK_THROWS_AS(certify(f, Tensor::zeros({16}), 2, opt, 0), Error);
  CertifyOptions bad = opt;
  bad.alpha = 0;
  CHECK_THROWS_AS(certify(f, zero_image(), 2, bad, 0), Error);
  bad = opt;
  bad.n = int64_t(1) << 20, bad.batch = 1;  // 2^20 batches would overrun the phase's counters
  CHECK_THROWS_WITH(certify(f, zero_image(), 2, bad, 0), Catch::Contains("batches per phase"));
  BaseClassifier wrong = [](const Tensor& x) { return Tensor::zeros({x.dim(0), 3}); };
  CHECK_THROWS_WITH(certify(wrong, zero_image(), 2, opt, 0), Catch::Contains("base classifier"));
}

TEST_CASE("soft and both modes: same samples as hard, Bernstein bound on softmax sums", "[certify]") {
  BaseClassifier f = linear_classifier(unit_w(), 0.5f);
  CertifyOptions opt;
  opt.sigma = 0.5, opt.n0 = 100, opt.n = 10000, opt.batch = 2500, opt.seed = 9, opt.alpha = 0.001;
  CertifyResult hard = certify(f, zero_image(), 2, opt, 1);
  opt.mode = CertifyMode::Both;
  opt.beta = 1000;  // softmax(1000 z) is nearly one-hot: soft ~ hard
  CertifyResult both = certify(f, zero_image(), 2, opt, 1);
  CHECK(both.counts == hard.counts);
  CHECK(both.hard.radius == hard.hard.radius);
  CHECK(both.soft.prediction == 0);
  CHECK(both.soft_sums[0] + both.soft_sums[1] == Approx(10000).epsilon(1e-5));
  CHECK(both.soft_sums[0] == Approx(double(hard.counts[0])).epsilon(0.01));
  CHECK(both.soft.p_lower == Approx(bernstein_lower(both.soft_sums[0], both.soft_sumsq[0], 10000, 0.001)));
  CHECK(std::abs(both.soft.radius - hard.hard.radius) < 0.05);

  opt.mode = CertifyMode::Soft;
  opt.beta = 1;  // E[softmax(z)] with z ~ N(0.5, 0.25): about 0.61, certified but smaller
  CertifyResult soft = certify(f, zero_image(), 2, opt, 1);
  CHECK(soft.counts.empty());
  CHECK(soft.soft.prediction == 0);
  CHECK(soft.soft.radius > 0);
  CHECK(soft.soft.radius < hard.hard.radius);
  CHECK(parse_certify_mode("both") == CertifyMode::Both);
  CHECK_THROWS_AS(parse_certify_mode("medium"), Error);
}

// The same linear classifier through the engine's linear op, on any device.
static BaseClassifier engine_linear(Device d, float margin) {
  std::vector<float> w = unit_w();
  w.resize(2 * kD, 0.0f);  // row 1 of the weight is zero: logits [w.x + margin, 0]
  Var weight(Tensor::from_vector(w, {2, kD}).to(d)), bias(Tensor::from_vector({margin, 0.0f}, {2}).to(d));
  return [weight, bias](const Tensor& x) {
    NoGradGuard no_grad;
    return ops::linear(Var(x.view({x.dim(0), kD})), weight, bias).value();
  };
}

TEST_CASE("counts agree across devices and classifier implementations for the same seed", "[certify]") {
  CertifyOptions opt;
  opt.sigma = 0.5, opt.n0 = 100, opt.n = 20000, opt.batch = 4096, opt.seed = 11, opt.mode = CertifyMode::Both;
  CertifyResult ref = certify(linear_classifier(unit_w(), 0.3f), zero_image(), 2, opt, 17);
  CertifyResult cpu = certify(engine_linear(Device::CPU, 0.3f), zero_image(), 2, opt, 17);
  // Same noise; float vs double dot products can flip only samples within rounding of the boundary.
  CHECK(std::abs(cpu.counts[0] - ref.counts[0]) <= 2);
  CHECK(cpu.soft_sums[0] == Approx(ref.soft_sums[0]).epsilon(1e-5));
  if (!cuda_available()) {
    WARN("SKIPPED: the CUDA half of this test needs a GPU: " << cuda_unavailable_reason());
    return;
  }
  CertifyResult gpu = certify(engine_linear(Device::CUDA, 0.3f), zero_image().to(Device::CUDA), 2, opt, 17);
  CHECK(std::abs(gpu.counts0[0] - cpu.counts0[0]) <= 2);
  CHECK(std::abs(gpu.counts[0] - cpu.counts[0]) <= 2);
  CHECK(gpu.soft_sums[0] == Approx(cpu.soft_sums[0]).epsilon(1e-5));
  CHECK(gpu.soft_sumsq[0] == Approx(cpu.soft_sumsq[0]).epsilon(1e-5));
  PredictResult pg = predict(engine_linear(Device::CUDA, 0.3f), zero_image().to(Device::CUDA), 2, opt, 17);
  PredictResult pc = predict(engine_linear(Device::CPU, 0.3f), zero_image(), 2, opt, 17);
  CHECK(std::abs(pg.counts[0] - pc.counts[0]) <= 2);
}

TEST_CASE("predict: the top class when the binomial test rejects a tie, abstention on a tie", "[certify]") {
  CertifyOptions opt;
  opt.sigma = 0.5, opt.n = 1000, opt.batch = 100, opt.alpha = 0.001, opt.seed = 4;
  PredictResult p = predict(linear_classifier(unit_w(), 0.5f), zero_image(), 2, opt, 0);
  CHECK(p.prediction == 0);
  CHECK(p.counts[0] + p.counts[1] == 1000);
  CHECK(p.p_value < 1e-10);
  // Row r of every batch votes r % 2: exactly 500 against 500.
  BaseClassifier alternate = [](const Tensor& x) {
    Tensor z = Tensor::zeros({x.dim(0), 3});
    for (int64_t r = 0; r < x.dim(0); ++r) z.data()[r * 3 + r % 2] = 1.0f;
    return z;
  };
  PredictResult tie = predict(alternate, zero_image(), 3, opt, 0);
  CHECK(tie.counts == std::vector<int64_t>{500, 500, 0});
  CHECK(tie.p_value == 1.0);
  CHECK(tie.prediction == -1);
}

TEST_CASE("Cohen's TSV: header, row format, flushing, and reading back", "[report]") {
  // Python: "{:.3}".format(r) and str(datetime.timedelta(seconds=s))
  CHECK(format_radius(0.0) == "0.0");
  CHECK(format_radius(1.0) == "1.0");
  CHECK(format_radius(0.123456) == "0.123");
  CHECK(format_radius(1.23456) == "1.23");
  CHECK(format_radius(12.345) == "12.3");
  CHECK(format_radius(9.9999) == "10.0");
  CHECK(format_radius(100.0) == "1e+02");
  CHECK(format_radius(123.4) == "1.23e+02");
  CHECK(format_radius(1e-5) == "1e-05");
  CHECK(format_radius(0.0001234) == "0.000123");
  CHECK(format_radius(0.00099999) == "0.001");
  CHECK(format_elapsed(1.234567) == "0:00:01.234567");
  CHECK(format_elapsed(0.0) == "0:00:00");
  CHECK(format_elapsed(3600.5) == "1:00:00.500000");
  CHECK(format_elapsed(172805.25) == "2 days, 0:00:05.250000");
  CHECK(format_elapsed(1.5e-6) == "0:00:00.000002");
  CHECK(format_elapsed(59.9999996) == "0:01:00");

  std::string path = tmp_dir() + "/cohen.tsv";
  {
    TsvWriter w(path, TsvKind::Certify);
    CHECK(slurp(path) == "idx\tlabel\tpredict\tradius\tcorrect\ttime\n");
    CertifyRow r;
    r.idx = 0, r.label = 3, r.predict = 3, r.radius = 0.5678, r.correct = true, r.seconds = 1.234567;
    w.write(r);
    CHECK(slurp(path) == "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t3\t3\t0.568\t1\t0:00:01.234567\n");
    r.idx = 20, r.label = 1, r.predict = -1, r.radius = 0, r.correct = false, r.seconds = 15;
    w.write(r);
  }
  CHECK(slurp(path) ==
        "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t3\t3\t0.568\t1\t0:00:01.234567\n20\t1\t-1\t0.0\t0\t0:00:15\n");
  TsvFile f = read_tsv(path);
  REQUIRE(f.rows.size() == 2);
  CHECK(f.kind == TsvKind::Certify);
  // The TSV rounds as Cohen's ("{:.3}"); the radii file beside it keeps every digit.
  CHECK(slurp(radii_path(path)) == "idx\tradius\n0\t0.56779999999999997\n20\t0\n");
  CHECK(f.rows[0].radius == 0.5678);
  CHECK(f.rows[0].seconds == Approx(1.234567));
  CHECK(f.rows[1].predict == -1);
  std::remove(radii_path(path).c_str());  // without it: the TSV's rounded radii
  CHECK(read_tsv(path).rows[0].radius == 0.568);
  cut_radii(path, 1);  // no radii file: nothing to cut
  std::ofstream(radii_path(path)) << "idx\tradius\n0\t0.51\n";
  CHECK_THROWS_WITH(read_tsv(path), Catch::Contains("cohen.tsv.radii line 2 does not match") &&
                                        Catch::Contains("remove"));
  std::ofstream(radii_path(path)) << "idx\tradius\n0\t0.5678\n20\t0\n7\t0.1";
  CHECK(read_tsv(path).rows[0].radius == 0.5678);  // a row the TSV lacks (and a half line) is left out
  cut_radii(path, 1);
  CHECK(slurp(radii_path(path)) == "idx\tradius\n0\t0.5678\n");
  CHECK_THROWS_WITH(cut_radii(path, 2), Catch::Contains("holds 1 rows"));

  CertifyRow p;
  p.idx = 7, p.label = 2, p.predict = 2, p.correct = true, p.seconds = 0.25;
  CHECK(tsv_header(TsvKind::Predict) == "idx\tlabel\tpredict\tcorrect\ttime");
  CHECK(tsv_row(TsvKind::Predict, p) == "7\t2\t2\t1\t0:00:00.250000");
  p.radius = 0.25, p.soft_predict = 2, p.soft_radius = 0.31, p.soft_correct = true;
  CHECK(tsv_header(TsvKind::Both) ==
        "idx\tlabel\tpredict\tradius\tcorrect\tsoft_predict\tsoft_radius\tsoft_correct\ttime");
  CHECK(tsv_row(TsvKind::Both, p) == "7\t2\t2\t0.25\t1\t2\t0.31\t1\t0:00:00.250000");

  std::ofstream(tmp_dir() + "/bad.tsv") << "idx\tlabel\tpredict\tradius\tcorrect\ttime\n1\t2\t2\t0.5\t1\t0:00:01\n"
                                        << "2\t2\t2\tabc\t1\t0:00:01\n";
  CHECK_THROWS_WITH(read_tsv(tmp_dir() + "/bad.tsv"),
                    Catch::Contains("bad.tsv line 3") && Catch::Contains("radius"));
  std::ofstream(tmp_dir() + "/short.tsv") << "idx\tlabel\tpredict\tcorrect\ttime\n1\t2\t2\n";
  CHECK_THROWS_WITH(read_tsv(tmp_dir() + "/short.tsv"), Catch::Contains("line 2") && Catch::Contains("found 3"));
  std::ofstream(tmp_dir() + "/header.tsv") << "a,b,c\n";
  CHECK_THROWS_WITH(read_tsv(tmp_dir() + "/header.tsv"), Catch::Contains("header.tsv line 1"));
  CHECK_THROWS_WITH(read_tsv(tmp_dir() + "/missing.tsv"), Catch::Contains("missing.tsv"));
}

TEST_CASE("summary of a hand-made TSV: certified accuracy per radius and ACR", "[report]") {
  std::string path = tmp_dir() + "/hand.tsv";
  std::ofstream(path) << "idx\tlabel\tpredict\tradius\tcorrect\ttime\n"
                      << "0\t1\t1\t0.25\t1\t0:00:01\n"    // correct, exactly on the 0.25 grid
                      << "1\t2\t2\t0.6\t1\t0:00:02\n"     // correct
                      << "2\t3\t4\t0.9\t0\t0:00:03\n"     // wrong class: counts nowhere
                      << "3\t5\t-1\t0.0\t0\t0:00:04\n"    // abstained
                      << "4\t6\t6\t2.3\t1\t0:00:05\n";    // correct, beyond 2.25
  TsvFile f = read_tsv(path);
  std::vector<CertifySummary> s = summarize_file(f, file_label(path));
  REQUIRE(s.size() == 1);
  CHECK(s[0].label == "hand");
  // By hand: r=0 -> rows 0,1,4; 0.25 -> 0,1,4; 0.5 -> 1,4; 0.75..2.25 -> 4. Out of 5.
  std::vector<double> expected = {0.6, 0.6, 0.4, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2};
  REQUIRE(s[0].accuracy.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) CHECK(s[0].accuracy[i] == Approx(expected[i]));
  CHECK(s[0].acr == Approx((0.25 + 0.6 + 2.3) / 5));  // 0.63
  CHECK(s[0].abstain == Approx(0.2));
  CHECK(s[0].mean_seconds == Approx(3.0));
  CHECK(s[0].images == 5);

  nlohmann::json j = nlohmann::json::parse(summary_json(s[0]));
  CHECK(j["acr"].get<double>() == Approx(0.63));
  CHECK(j["certified_accuracy"][2].get<double>() == Approx(0.4));
  CHECK(j["radii"][9].get<double>() == 2.25);
  CHECK(nlohmann::json::parse(summaries_json(s)).size() == 1);
  std::string table = summary_table(s);
  CHECK_THAT(table, Catch::Contains("hand") && Catch::Contains("0.630") && Catch::Contains("2.25"));

  std::ofstream(tmp_dir() + "/both.tsv") << tsv_header(TsvKind::Both) << "\n0\t1\t1\t0.5\t1\t1\t1.0\t1\t0:00:01\n"
                                         << "1\t1\t-1\t0.0\t0\t1\t0.3\t1\t0:00:01\n";
  std::vector<CertifySummary> b = summarize_file(read_tsv(tmp_dir() + "/both.tsv"), "both");
  REQUIRE(b.size() == 2);
  CHECK(b[0].label == "both (hard)");
  CHECK(b[0].acr == Approx(0.25));
  CHECK(b[1].acr == Approx(0.65));
  CHECK(b[1].accuracy[1] == Approx(1.0));
  CHECK(b[1].accuracy[2] == Approx(0.5));
}

TEST_CASE("a TSV as Cohen et al. published them: seconds as decimals, radii on the grid certified", "[report]") {
  // 500 rows, every 20th test image, radius k/100 (k = 0..260, many exactly on the 0.25 grid),
  // the time as plain seconds in the forms published TSVs use.
  std::string path = tmp_dir() + "/published.tsv";
  std::ofstream out(path);
  out << "idx\tlabel\tpredict\tradius\tcorrect\ttime\n";
  std::vector<int> ks;
  std::vector<bool> correct;
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull, state >> 33; };
  const char* times[] = {"15.4", "16", "1.5e+01", "0.123456", "15.400000000000000355"};
  for (int i = 0; i < 500; ++i) {
    int k = int(next() % 261);
    if (i % 5 == 0) k = 25 * int(next() % 10);  // exactly 0, 0.25, ..., 2.25
    bool ok = next() % 4 != 0;
    int label = int(next() % 10);
    ks.push_back(k), correct.push_back(ok);
    char radius[32];
    std::snprintf(radius, sizeof radius, "%g", k / 100.0);
    out << i * 20 << "\t" << label << "\t" << (ok ? label : (label + 1) % 10) << "\t" << radius << "\t" << ok
        << "\t" << times[i % 5] << "\n";
  }
  out.close();
  TsvFile f = read_tsv(path);
  REQUIRE(f.rows.size() == 500);
  CHECK(f.rows[0].seconds == 15.4);
  CHECK(f.rows[2].seconds == 15.0);
  std::vector<CertifySummary> s = summarize_file(f, "published");
  REQUIRE(s.size() == 1);
  // Certified accuracy at r = 0.25 j: correct rows with k >= 25 j, counted here in integers.
  for (int j = 0; j < 10; ++j) {
    int64_t count = 0;
    for (size_t i = 0; i < ks.size(); ++i) count += correct[i] && ks[i] >= 25 * j;
    INFO("radius " << 0.25 * j);
    CHECK(s[0].accuracy[size_t(j)] == double(count) / 500.0);
  }
  // The images summarised.
  nlohmann::json j = nlohmann::json::parse(summary_json(s[0]));
  CHECK(j["images"] == 500);
  CHECK(j["first_idx"] == 0);
  CHECK(j["last_idx"] == 9980);
  CHECK(j["step"] == 20);
  // Times that are neither: refused, naming the column.
  for (const char* bad : {"-1.5", "abc", "15.4s", "nan", "1:2"}) {
    std::ofstream(tmp_dir() + "/bad_time.tsv") << "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t"
                                               << bad << "\n";
    INFO(bad);
    CHECK_THROWS_WITH(read_tsv(tmp_dir() + "/bad_time.tsv"), Catch::Contains("column 'time'"));
  }
  // Irregular steps: step null.
  std::ofstream(tmp_dir() + "/irregular.tsv") << "idx\tlabel\tpredict\tradius\tcorrect\ttime\n"
                                              << "3\t1\t1\t0.5\t1\t1.0\n5\t1\t1\t0.5\t1\t1.0\n9\t1\t1\t0.5\t1\t1.0\n";
  nlohmann::json irr = nlohmann::json::parse(summary_json(summarize_file(read_tsv(tmp_dir() + "/irregular.tsv"), "i")[0]));
  CHECK(irr["first_idx"] == 3);
  CHECK(irr["last_idx"] == 9);
  CHECK(irr["step"].is_null());
}

TEST_CASE("a PREDICT file is summarised as accuracy and abstention, not radii", "[report]") {
  std::string path = tmp_dir() + "/predict.tsv";
  std::ofstream(path) << tsv_header(TsvKind::Predict) << "\n"
                      << "0\t1\t1\t1\t0:00:01\n"     // right
                      << "10\t2\t-1\t0\t0:00:01\n"   // abstained
                      << "20\t3\t4\t0\t0:00:01\n"    // wrong
                      << "30\t5\t5\t1\t2.5\n";      // right (time in seconds)
  std::vector<CertifySummary> s = summarize_file(read_tsv(path), "predict");
  REQUIRE(s.size() == 1);
  CHECK(s[0].predict);
  CHECK(s[0].predict_accuracy == 0.5);
  CHECK(s[0].abstain == 0.25);
  nlohmann::json j = nlohmann::json::parse(summary_json(s[0]));
  CHECK(j["mode"] == "predict");
  CHECK(j["accuracy"] == 0.5);
  CHECK(j["abstain"] == 0.25);
  CHECK(j["step"] == 10);
  CHECK_FALSE(j.contains("certified_accuracy"));
  CHECK_FALSE(j.contains("acr"));
  std::string table = summary_table(s);
  CHECK_THAT(table, Catch::Contains("PREDICT") && Catch::Contains("0.500") && !Catch::Contains("ACR"));
}

TEST_CASE("plot writes a valid, non-blank PNG with one colour per file", "[report]") {
  std::vector<PlotSeries> series;
  for (int k = 0; k < 2; ++k) {
    PlotSeries s;
    s.label = k == 0 ? "macer-sigma0.50" : "cohen_sigma0.50";
    for (int i = 0; i < 50; ++i) {
      CertifyRow r;
      r.correct = i % 4 != 0;
      r.radius = r.correct ? 0.04 * i * (k + 1) / 2.0 : 0.0;
      s.rows.push_back(r);
    }
    series.push_back(s);
  }
  std::string png = tmp_dir() + "/plot.png";
  std::filesystem::remove(png);
  plot_certified_accuracy(png, series, 640, 400);
  CHECK_FALSE(std::filesystem::exists(png + ".tmp"));
  int w = 0, h = 0, ch = 0;
  unsigned char* img = stbi_load(png.c_str(), &w, &h, &ch, 3);
  REQUIRE(img != nullptr);
  CHECK(w == 640);
  CHECK(h == 400);
  int white = 0, blue = 0, orange = 0, black = 0;
  for (int i = 0; i < w * h; ++i) {
    const unsigned char* p = img + 3 * i;
    white += p[0] == 255 && p[1] == 255 && p[2] == 255;
    black += p[0] == 0 && p[1] == 0 && p[2] == 0;
    blue += p[0] == 31 && p[1] == 119 && p[2] == 180;
    orange += p[0] == 255 && p[1] == 127 && p[2] == 14;
  }
  stbi_image_free(img);
  CHECK(white < w * h);
  CHECK(black > 500);   // axes, ticks and text
  CHECK(blue > 300);    // first curve and its legend sample
  CHECK(orange > 300);  // second curve
  CHECK_THROWS_AS(plot_certified_accuracy(tmp_dir() + "/no/such/dir/plot.png", series), Error);
  CHECK_THROWS_AS(plot_certified_accuracy(png, {}), Error);
}
