// Whole-or-nothing file output, the one helper every writer of the house uses (checkpoints,
// certification reports, plots, bench JSON), and the up-front check that an output can be written.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace macer {

// Writes what `emit` puts on the stream to PATH, whole or not at all:
// - symlinks are followed, so the file they point to is replaced and the link stays;
// - a regular file (or a new one) is written to a temporary file beside it, flushed to disk
//   and renamed over it; on any failure the temporary file is removed and the old file kept;
// - an existing target that is not a regular file (a device, a FIFO) is written directly.
// Throws macer::Error naming the file and the OS reason.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& emit);
void write_file_atomic(const std::string& path, const std::string& contents);

// Checks before any work starts that PATH can be written later: it is not a folder, and it (or
// its folder, when it does not exist yet) is writable. `what` names it in the error, e.g. "--json".
void check_writable(const std::string& path, const std::string& what);

// Creates folder DIR (and its parents) if needed and checks it is a writable folder.
void ensure_writable_dir(const std::string& dir, const std::string& what);

}  // namespace macer
