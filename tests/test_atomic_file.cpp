// engine/atomic_file.h: whole-or-nothing writes through symlinks, in place on device nodes,
// no temporary left behind on failure, and the up-front writability checks.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/atomic_file.h"
#include "kernels/check.h"
#include "data_test_util.h"

using namespace macer;
using data_test::TempDir;
namespace fs = std::filesystem;

namespace {


std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Files in `dir` whose name holds ".tmp": what a failed write must not leave behind.
int temporaries(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp") != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("write_file_atomic replaces a file whole and keeps its mode", "[atomic]") {
  TempDir dir_tmp("plain");
  const fs::path dir = dir_tmp.path;
  fs::path f = dir / "out.txt";
  write_file_atomic(f.string(), "first\n");
  CHECK(slurp(f) == "first\n");
  ::chmod(f.c_str(), 0640);
  write_file_atomic(f.string(), "second\n");
  CHECK(slurp(f) == "second\n");
  struct stat st;
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(temporaries(dir) == 0);
}

TEST_CASE("write_file_atomic follows symlinks: the link stays, its target is replaced", "[atomic]") {
  TempDir dir_tmp("link");
  const fs::path dir = dir_tmp.path;
  fs::create_directories(dir / "real");
  fs::path target = dir / "real" / "data.json";
  std::ofstream(target) << "old";
  fs::create_symlink("real/data.json", dir / "link.json");  // relative, resolved against its folder
  write_file_atomic((dir / "link.json").string(), "new");
  CHECK(fs::is_symlink(dir / "link.json"));
  CHECK(slurp(target) == "new");
  // A dangling link: the file it names is created.
  fs::create_symlink(dir / "real" / "later.json", dir / "dangling.json");
  write_file_atomic((dir / "dangling.json").string(), "made");
  CHECK(fs::is_symlink(dir / "dangling.json"));
  CHECK(slurp(dir / "real" / "later.json") == "made");
  CHECK(temporaries(dir / "real") == 0);
}

TEST_CASE("write_file_atomic writes device nodes in place and reports their errors", "[atomic]") {
  REQUIRE(fs::is_character_file("/dev/null"));
  write_file_atomic("/dev/null", "discarded");
  CHECK(fs::is_character_file("/dev/null"));
  if (fs::is_character_file("/dev/full")) {
    CHECK_THROWS_WITH(write_file_atomic("/dev/full", std::string(1 << 16, 'x')),
                      Catch::Contains("/dev/full") && Catch::Contains("No space left"));
    CHECK(fs::is_character_file("/dev/full"));  // not replaced by a regular file
  }
}

TEST_CASE("a failed write leaves the old file and no temporary", "[atomic]") {
  TempDir dir_tmp("fail");
  const fs::path dir = dir_tmp.path;
  fs::path f = dir / "keep.bin";
  write_file_atomic(f.string(), "intact");
  CHECK_THROWS_WITH(write_file_atomic(f.string(), [](std::ostream& out) {
                      out << "half";
                      throw Error("emit failed midway");
                    }),
                    Catch::Contains("emit failed midway"));
  CHECK(slurp(f) == "intact");
  CHECK(temporaries(dir) == 0);
  CHECK_THROWS_WITH(write_file_atomic(dir.string(), "x"), Catch::Contains("is a folder"));
  CHECK_THROWS_WITH(write_file_atomic((dir / "missing" / "x").string(), "x"), Catch::Contains("No such file"));
  CHECK(temporaries(dir) == 0);
}

TEST_CASE("check_writable and ensure_writable_dir refuse bad outputs before any work", "[atomic]") {
  TempDir dir_tmp("check");
  const fs::path dir = dir_tmp.path;
  CHECK_NOTHROW(check_writable((dir / "new.json").string(), "--json"));
  CHECK_THROWS_WITH(check_writable(dir.string(), "--json"), Catch::Contains("--json") && Catch::Contains("is a folder"));
  CHECK_THROWS_WITH(check_writable((dir / "nope" / "x.png").string(), "--plot"),
                    Catch::Contains("--plot") && Catch::Contains("No such file or directory"));
  std::ofstream(dir / "file") << "x";
  CHECK_THROWS_WITH(check_writable((dir / "file" / "x.png").string(), "--plot"), Catch::Contains("not a folder"));
  CHECK_NOTHROW(ensure_writable_dir((dir / "a" / "b").string(), "run.checkpoint_dir"));
  CHECK(fs::is_directory(dir / "a" / "b"));
  CHECK_THROWS_WITH(ensure_writable_dir((dir / "file" / "sub").string(), "run.checkpoint_dir"),
                    Catch::Contains("run.checkpoint_dir") && Catch::Contains("Not a directory"));
}
