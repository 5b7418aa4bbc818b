// Tests of macer/mat_results (the --mat file of macer_certify): the bytes parse back through
// data/mat5's reader as MACER's 1 x N double variables, with -1 where a prediction is wrong.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "data/mat5.h"
#include "macer/certify/mat_results.h"

using namespace macer;

namespace {
std::vector<data::mat5::Array> parse(const std::string& bytes) {
  auto buf = std::make_shared<const std::vector<uint8_t>>(bytes.begin(), bytes.end());
  return data::mat5::parse(buf, "test.mat");
}

CertifyRow row(int label, int predict, double radius, int soft_predict = -1, double soft_radius = 0) {
  CertifyRow r;
  r.label = label, r.predict = predict, r.radius = radius, r.correct = predict == label;
  r.soft_predict = soft_predict, r.soft_radius = soft_radius, r.soft_correct = soft_predict == label;
  return r;
}
}  // namespace

TEST_CASE("MAT v5 rows read back as 1 x N doubles with their names", "[mat]") {
  std::vector<double> a = {0.5, -1.0, 1.25e-3, 3.0}, b = {};
  std::string bytes = mat5_double_rows({{"hard", a}, {"a_longer_name_9", {2.0}}, {"soft", b}});
  REQUIRE(bytes.size() % 8 == 0);
  CHECK(bytes.substr(0, 10) == "MATLAB 5.0");
  CHECK(bytes.substr(126, 2) == "IM");
  auto vars = parse(bytes);
  REQUIRE(vars.size() == 3);
  CHECK(vars[0].name == "hard");
  CHECK(vars[0].mx_class == data::mat5::mxDOUBLE_CLASS);
  CHECK(vars[0].dims == std::vector<int64_t>{1, 4});
  CHECK(vars[0].to_f64() == a);
  CHECK(vars[1].name == "a_longer_name_9");
  CHECK(vars[1].to_f64() == std::vector<double>{2.0});
  CHECK(vars[2].dims == std::vector<int64_t>{1, 0});
}

TEST_CASE("MACER's variables: the radius where correct, -1 where wrong or abstained", "[mat]") {
  // label, predict (-1 = abstain), radius; then the soft certificate.
  std::vector<CertifyRow> rows = {row(3, 3, 0.75, 3, 0.5), row(1, 2, 0.4, 1, 0.25), row(0, -1, 0.0, -1, 0.0),
                                  row(5, 5, 0.0, 4, 0.1)};
  auto hard = mat_variables(rows, TsvKind::Certify, false);
  REQUIRE(hard.size() == 1);
  CHECK(hard[0].first == "hard");
  CHECK(hard[0].second == std::vector<double>{0.75, -1.0, -1.0, 0.0});
  auto soft = mat_variables(rows, TsvKind::Certify, true);  // soft-only rows keep it in radius
  CHECK(soft[0].first == "soft");
  CHECK(soft[0].second == hard[0].second);
  auto both = mat_variables(rows, TsvKind::Both, false);
  REQUIRE(both.size() == 2);
  CHECK(both[0].first == "hard");
  CHECK(both[1].first == "soft");
  CHECK(both[1].second == std::vector<double>{0.5, 0.25, -1.0, -1.0});
  CHECK_THROWS_WITH(mat_variables(rows, TsvKind::Predict, false), Catch::Contains("PREDICT"));
}

TEST_CASE("write_mat_results writes the file whole, leaving no temporary", "[mat]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "macer_test_mat";
  fs::create_directories(dir);
  std::string path = (dir / "r.mat").string();
  write_mat_results(path, {row(1, 1, 0.5)}, TsvKind::Certify, false);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  auto vars = data::mat5::read_file(path);
  REQUIRE(vars.size() == 1);
  CHECK(vars[0].to_f64() == std::vector<double>{0.5});
  CHECK_THROWS_WITH(write_mat_results((dir / "no_such_dir" / "r.mat").string(), {}, TsvKind::Certify, false),
                    Catch::Contains("cannot write"));
  fs::remove_all(dir);
}
