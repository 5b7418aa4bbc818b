// The engine's one error type and its check macro, shared by every layer of the house.
// Errors carry a plain message; bin/ prints it as one `error: ...` line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace macer {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Out of device or host memory: a distinct type, so the programs can say what to reduce.
struct OutOfMemory : Error {
  using Error::Error;
};

}  // namespace macer

// MACER_CHECK(cond, "message " << value): throws macer::Error naming the condition's place.
#define MACER_CHECK(cond, msg)                                                  \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::ostringstream macer_check_os_;                                       \
      macer_check_os_ << msg;                                                   \
      throw ::macer::Error(macer_check_os_.str());                              \
    }                                                                           \
  } while (0)
