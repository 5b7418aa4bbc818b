// What certification must never get silently wrong (CPU): a classifier with NaN or infinite
// logits is refused, argmax treats NaN alike on both devices, the three noise streams never
// share a draw, finished results refuse duplicates and infinite radii, and --resume's pieces.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/ops.h"
#include "kernels/finite_check.h"
#include "kernels/smoothing.h"
#include "macer/certify/run_record.h"
#include "macer/noise_streams.h"
#include "macer/certify/smoothing.h"
#include "data_test_util.h"

using namespace macer;
using data_test::TempDir;
namespace fs = std::filesystem;

namespace {

// Logits (m, 3): class 1 wins, except that one entry of every `every`-th batch is `bad`.
BaseClassifier poisoned(float bad, int every, int* batches) {
  return [bad, every, batches](const Tensor& x) {
    int64_t m = x.dim(0);
    Tensor z = Tensor::zeros({m, 3});
    for (int64_t r = 0; r < m; ++r) z.data()[r * 3 + 1] = 1.0f;
    if (++*batches % every == 0) z.data()[(m - 1) * 3 + 2] = bad;
    return z;
  };
}


}  // namespace

TEST_CASE("non-finite logits are refused in every mode, not certified", "[certify][safety]") {
  Tensor image = Tensor::zeros({1, 2, 2});
  CertifyOptions opt;
  opt.n0 = 20, opt.n = 200, opt.batch = 50;
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    for (CertifyMode mode : {CertifyMode::Hard, CertifyMode::Soft, CertifyMode::Both}) {
      INFO("bad " << bad << " mode " << certify_mode_name(mode));
      opt.mode = mode;
      int batches = 0;
      CHECK_THROWS_WITH(certify(poisoned(bad, 3, &batches), image, 3, opt, 7),
                        Catch::Contains("image 7") && Catch::Contains("NaN or infinite logits"));
    }
    int batches = 0;
    CHECK_THROWS_WITH(predict(poisoned(bad, 2, &batches), image, 3, opt, 4), Catch::Contains("NaN or infinite"));
  }
  int batches = 0;  // the same classifier without the poison certifies class 1
  CHECK(certify(poisoned(0.0f, 1000, &batches), image, 3, opt, 7).hard.prediction == 1);
}

TEST_CASE("argmax: ties to the lowest class, NaN never wins, all-NaN rows vote 0 (as on CUDA)", "[certify][safety]") {
  const float nan = std::nanf("");
  std::vector<float> z = {nan, 1, 2,     // 2: NaN first does not win
                          1, nan, 0,     // 0
                          nan, nan, nan, // 0
                          -INFINITY, nan, -INFINITY,  // 0
                          3, 3, nan};    // 0: a tie goes to the lowest class
  std::vector<int64_t> counts(3, 0);
  kernels::cpu::argmax_histogram({5, 3}, z.data(), counts.data());
  CHECK(counts == std::vector<int64_t>{4, 0, 1});
}

TEST_CASE("first_bad_tag keeps the smallest tag of the calls that saw a non-finite value", "[certify][safety]") {
  std::vector<float> ok(100, 1.0f), bad = ok;
  bad[57] = std::nanf("");
  int64_t first = INT64_MAX;
  kernels::cpu::first_bad_tag(100, ok.data(), 3, &first);
  CHECK(first == INT64_MAX);
  kernels::cpu::first_bad_tag(100, bad.data(), 9, &first);
  kernels::cpu::first_bad_tag(100, bad.data(), 5, &first);
  kernels::cpu::first_bad_tag(100, bad.data(), 12, &first);
  CHECK(first == 5);
  bad[57] = -INFINITY;
  kernels::cpu::first_bad_tag(100, bad.data(), 2, &first);
  CHECK(first == 2);
}

TEST_CASE("training, certification and in-training certification draw disjoint noise", "[certify][safety]") {
  using namespace noise;
  CHECK(stream_of(kTraining | kMaxCounter) == kTraining);
  CHECK(stream_of(kCertify | kMaxCounter) == kCertify);
  CHECK(stream_of(kTrainingCertify) == kTrainingCertify);
  CHECK(kTraining != kCertify);
  CHECK(kCertify != kTrainingCertify);
  // Same seed, the first draws of each stream: training step 0 and image 0's selection batch.
  const float sigma = 1.0f;
  const int copies = 64;
  Tensor image = Tensor::zeros({1, 3, 8, 8});
  Tensor train = ops::noisy_copies(image, copies, sigma, 5, kTraining | 0);
  auto first_batch = [&](uint64_t stream) {
    Tensor seen;
    BaseClassifier record = [&seen](const Tensor& x) {
      if (!seen.defined()) seen = x.clone();
      return Tensor::zeros({x.dim(0), 2});
    };
    CertifyOptions opt;
    opt.sigma = sigma, opt.n0 = copies, opt.n = copies, opt.batch = copies, opt.seed = 5, opt.stream = stream;
    certify(record, image.view({3, 8, 8}), 2, opt, 0);
    return seen;
  };
  Tensor cert = first_batch(kCertify), in_training = first_batch(kTrainingCertify);
  REQUIRE(cert.numel() == train.numel());
  int64_t equal_tc = 0, equal_ti = 0, equal_ci = 0;
  for (int64_t i = 0; i < train.numel(); ++i) {
    equal_tc += train.data()[i] == cert.data()[i];
    equal_ti += train.data()[i] == in_training.data()[i];
    equal_ci += cert.data()[i] == in_training.data()[i];
  }
  CHECK(equal_tc == 0);
  CHECK(equal_ti == 0);
  CHECK(equal_ci == 0);
  CertifyOptions opt;
  opt.stream = 12345;
  int batches = 0;
  CHECK_THROWS_WITH(certify(poisoned(0, 1000, &batches), Tensor::zeros({1, 2, 2}), 3, opt, 0),
                    Catch::Contains("not a certification noise stream"));
}

TEST_CASE("finished results refuse an image given twice and infinite radii", "[certify][safety]") {
  TempDir dir_tmp("tsv");
  const std::string dir = dir_tmp.path.string();
  std::string head = tsv_header(TsvKind::Certify) + "\n";
  std::ofstream(dir + "/dup.tsv") << head << "0\t1\t1\t0.5\t1\t0:00:01\n3\t1\t1\t0.5\t1\t0:00:01\n0\t1\t1\t0.5\t1\t0:00:01\n";
  std::ofstream(dir + "/inf.tsv") << head << "0\t1\t1\tinf\t1\t0:00:01\n";
  CHECK_THROWS_WITH(read_tsv(dir + "/dup.tsv"), Catch::Contains("line 4") && Catch::Contains("already given on line 2"));
  CHECK_THROWS_WITH(read_tsv(dir + "/inf.tsv"), Catch::Contains("line 2") && Catch::Contains("radius"));
}

TEST_CASE("resume pieces: the run record must match, a half row is cut, rows must be the run's first", "[certify][safety]") {
  TempDir dir_tmp("resume");
  const std::string dir = dir_tmp.path.string();
  std::string tsv = dir + "/out.tsv";
  std::vector<std::pair<std::string, std::string>> record = {{"sigma", "0.25"}, {"n", "1000"}};
  CHECK_THROWS_WITH(check_run_record(tsv, record), Catch::Contains("run record") && Catch::Contains("missing"));
  write_run_record(tsv, record);
  CHECK_NOTHROW(check_run_record(tsv, record));
  CHECK_THROWS_WITH(check_run_record(tsv, {{"sigma", "0.5"}, {"n", "1000"}}),
                    Catch::Contains("sigma = 0.25") && Catch::Contains("this run has 0.5"));
  // A stored key the new run lacks (a shard resumed without --shard) is refused; the image count
  // may differ (--count grows).
  write_run_record(tsv, {{"sigma", "0.25"}, {"n", "1000"}, {"shard", "1/4"}, {"images", "40"}});
  CHECK_THROWS_WITH(check_run_record(tsv, record), Catch::Contains("shard = 1/4") && Catch::Contains("has none"));
  write_run_record(tsv, {{"sigma", "0.25"}, {"n", "1000"}, {"images", "40"}});
  CHECK_NOTHROW(check_run_record(tsv, record));
  CHECK(parse_shard("2/5", "x") == std::pair<int64_t, int64_t>{2, 5});
  CHECK_THROWS_WITH(parse_shard("5/5", "--shard"), Catch::Contains("--shard") && Catch::Contains("I/N"));
  CHECK_THROWS_AS(parse_shard("1/4x", "x"), Error);
  std::string head = tsv_header(TsvKind::Certify) + "\n";
  std::ofstream(tsv) << head << "0\t1\t1\t0.5\t1\t0:00:01\n10\t2\t2\t0.25\t1\t0:00:01\n20\t1\t";
  auto rows = rows_to_resume(tsv, TsvKind::Certify, {0, 10, 20, 30});
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].idx == 10);
  std::ifstream in(tsv);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == head + "0\t1\t1\t0.5\t1\t0:00:01\n10\t2\t2\t0.25\t1\t0:00:01\n");  // the half row is gone
  CHECK_THROWS_WITH(rows_to_resume(tsv, TsvKind::Certify, {0, 5, 10}), Catch::Contains("row 2 is image 10"));
  CHECK_THROWS_WITH(rows_to_resume(tsv, TsvKind::Predict, {0, 10}), Catch::Contains("columns"));
  CHECK(file_fingerprint(tsv) != file_fingerprint(dir + "/out.tsv.run.json"));
}
