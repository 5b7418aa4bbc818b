// engine/atomic_file.h: temporary file + fsync + rename, with symlinks resolved and device nodes
// written in place; POSIX calls so every failure can name its errno.
#include "engine/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "kernels/check.h"

namespace macer {

namespace fs = std::filesystem;

namespace {

std::string os_reason() { return std::strerror(errno); }

// Follows symlinks (relative ones against their own folder) to the path that is really written.
std::string resolve_links(const std::string& path) {
  fs::path p = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p.string();
    fs::path target = fs::read_symlink(p);
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  throw Error(path + ": too many levels of symbolic links");
}

// Writes to an existing non-regular file (a device, a FIFO) in place.
void write_in_place(const std::string& path, const std::function<void(std::ostream&)>& emit) {
  std::ofstream out(path, std::ios::binary | std::ios::out);
  MACER_CHECK(out, "cannot write " << path << ": " << os_reason());
  errno = 0;
  emit(out);
  out.flush();
  MACER_CHECK(out, "writing " << path << " failed: " << (errno ? os_reason() : "stream error"));
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& emit) {
  MACER_CHECK(!path.empty(), "empty output path");
  const std::string target = resolve_links(path);
  struct stat st;
  bool exists = ::stat(target.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) throw Error("cannot write " + path + ": it is a folder");
  if (exists && !S_ISREG(st.st_mode)) return write_in_place(target, emit);

  std::vector<char> tmpl(target.begin(), target.end());
  const char suffix[] = ".tmp.XXXXXX";
  tmpl.insert(tmpl.end(), suffix, suffix + sizeof suffix);  // with the terminating zero
  int fd = ::mkstemp(tmpl.data());
  MACER_CHECK(fd >= 0, "cannot write " << path << ": " << os_reason());
  const std::string tmp(tmpl.data());
  auto fail = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    throw Error("writing " + path + " failed: " + why);
  };
  // mkstemp makes the file 0600; give it what a plain open would (0666 less the umask), or keep
  // the mode of the file it replaces.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, exists ? (st.st_mode & 07777) : (0666 & ~mask));
  ::close(fd);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(os_reason());
    errno = 0;
    try {
      emit(out);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
    out.flush();
    if (!out) fail(errno ? os_reason() : "stream error");
  }
  int sync_fd = ::open(tmp.c_str(), O_RDONLY);
  if (sync_fd < 0) fail(os_reason());
  int synced = ::fsync(sync_fd);
  int sync_errno = errno;
  ::close(sync_fd);
  if (synced != 0) fail(std::strerror(sync_errno));
  if (::rename(tmp.c_str(), target.c_str()) != 0) fail("cannot rename " + tmp + ": " + os_reason());
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(contents.data(), std::streamsize(contents.size())); });
}

void check_writable(const std::string& path, const std::string& what) {
  MACER_CHECK(!path.empty(), what << ": empty path");
  const std::string target = resolve_links(path);
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) {
    MACER_CHECK(!S_ISDIR(st.st_mode), what << " " << path << ": is a folder, not a file");
    MACER_CHECK(::access(target.c_str(), W_OK) == 0, what << " " << path << ": cannot write: " << os_reason());
    return;
  }
  fs::path dir = fs::path(target).parent_path();
  if (dir.empty()) dir = ".";
  MACER_CHECK(::stat(dir.c_str(), &st) == 0, what << " " << path << ": folder " << dir.string() << ": " << os_reason());
  MACER_CHECK(S_ISDIR(st.st_mode), what << " " << path << ": " << dir.string() << " is not a folder");
  MACER_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0,
              what << " " << path << ": cannot create files in " << dir.string() << ": " << os_reason());
}

void ensure_writable_dir(const std::string& dir, const std::string& what) {
  MACER_CHECK(!dir.empty(), what << ": empty path");
  std::error_code ec;
  fs::create_directories(dir, ec);
  struct stat st;
  MACER_CHECK(::stat(dir.c_str(), &st) == 0,
              what << " " << dir << ": cannot create folder: " << (ec ? ec.message() : os_reason()));
  MACER_CHECK(S_ISDIR(st.st_mode), what << " " << dir << ": exists and is not a folder");
  MACER_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, what << " " << dir << ": cannot write there: " << os_reason());
}

}  // namespace macer
