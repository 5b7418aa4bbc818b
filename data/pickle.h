// A small allow-listed reader of Python pickles (protocols 2-5), enough for CIFAR-10's python
// batches (cifar-10-batches-py, what torchvision downloads). Part of data/; no code from the file runs.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace macer::data::pickle {

// A value of the pickle: None, bool/int, float, text (Python 2 str, bytes and unicode alike, as
// raw bytes), list, tuple, dict (keys as text), a global ("module.name"), or an object made by
// REDUCE/NEWOBJ of a global (its arguments) and BUILD (its state).
struct Value {
  enum class Kind { None, Int, Float, Text, List, Tuple, Dict, Global, Object } kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string text;  // Text; Global: "module.name"; Object: its global's name
  std::vector<Value*> items;                         // List, Tuple; Object: its arguments
  std::vector<std::pair<std::string, Value*>> dict;  // Dict (text keys)
  Value* state = nullptr;                            // Object: what BUILD gave it
  const Value* find(const std::string& key) const;   // Dict: the value of key, or null
};

// The parsed pickle: every value lives in `arena` (a pickle may make cycles through its memo),
// `root` is what STOP returned.
struct Pickle {
  std::vector<std::unique_ptr<Value>> arena;
  Value* root = nullptr;
};

// Parses the pickle in `bytes`; throws macer::Error naming `path` on an opcode outside the
// subset, a truncated or malformed stream, or a global outside numpy's array reconstruction
// and _codecs.encode (Python 3's way of pickling bytes at protocol 2).
Pickle parse(const std::vector<uint8_t>& bytes, const std::string& path);

// A numpy uint8 array as REDUCE(numpy.core.multiarray._reconstruct) + BUILD(state) gives it:
// its shape and raw bytes (C order); throws naming `path` and `what` for anything else.
struct U8Array {
  std::vector<int64_t> shape;
  const std::string* bytes = nullptr;  // points into the parsed value
};
U8Array numpy_u8(const Value& v, const std::string& path, const std::string& what);

}  // namespace macer::data::pickle
