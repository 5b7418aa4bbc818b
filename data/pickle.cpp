// data/pickle.h: a stack machine over the pickle opcodes that plain containers, numpy arrays and
// Python 2 strings use (Python's Lib/pickle.py names them); every other opcode is refused.
#include "data/pickle.h"

#include <cstring>

#include "kernels/check.h"

namespace macer::data::pickle {

const Value* Value::find(const std::string& key) const {
  for (const auto& [k, v] : dict)
    if (k == key) return v;
  return nullptr;
}

namespace {

using Ptr = Value*;

bool allowed_global(const std::string& name) {
  return name == "numpy.core.multiarray._reconstruct" || name == "numpy._core.multiarray._reconstruct" ||
         name == "numpy.ndarray" || name == "numpy.dtype" || name == "_codecs.encode";
}

// UTF-8 text whose code points are all below 256, as those bytes ("latin1").
bool latin1_of_utf8(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out->push_back(char(c));
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3) {
      out->push_back(char(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F)));
    } else {
      return false;
    }
  }
  return true;
}

class Machine {
 public:
  Machine(const std::vector<uint8_t>& b, const std::string& path, Pickle* out) : b_(b), path_(path), out_(out) {}

  Ptr run() {
    for (;;) {
      const size_t at = pos_;
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                  // PROTO
        case 0x95: take(8); break;               // FRAME: a length hint
        case '(': marks_.push_back(stack_.size()); break;
        case '}': push(make(Value::Kind::Dict)); break;
        case ']': push(make(Value::Kind::List)); break;
        case ')': push(make(Value::Kind::Tuple)); break;
        case 'N': push(make(Value::Kind::None)); break;
        case 0x88: case 0x89: {                  // NEWTRUE, NEWFALSE
          Ptr v = make(Value::Kind::Int);
          v->i = op == 0x88;
          push(v);
          break;
        }
        case 'K': push_int(u8()); break;         // BININT1
        case 'M': push_int(uint_le(2)); break;   // BININT2
        case 'J': push_int(int32_t(uint32_t(uint_le(4)))); break;  // BININT
        case 0x8a: {                             // LONG1: n bytes, little-endian two's complement
          size_t n = u8();
          fail_unless(n <= 8, at, "an integer longer than 8 bytes");
          uint64_t u = uint_le(n);
          if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t(0) << (8 * n);
          push_int(int64_t(u));
          break;
        }
        case 'G': {                              // BINFLOAT: big-endian double
          uint64_t u = 0;
          for (char c : take(8)) u = (u << 8) | static_cast<unsigned char>(c);
          Ptr v = make(Value::Kind::Float);
          std::memcpy(&v->f, &u, 8);
          push(v);
          break;
        }
        case 'U': case 'C': case 0x8c: push_text(take(u8())); break;            // 1-byte lengths
        case 'T': case 'X': case 'B': push_text(take(uint_le(4))); break;       // 4-byte lengths
        case 0x8d: case 0x8e: case 0x96: push_text(take(uint_le(8))); break;    // 8-byte lengths
        case 'q': memo_[uint_le(1)] = top(at); break;   // BINPUT
        case 'r': memo_[uint_le(4)] = top(at); break;   // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(at); break;  // MEMOIZE
        case 'h': case 'j': {                            // BINGET, LONG_BINGET
          auto it = memo_.find(uint_le(op == 'h' ? 1 : 4));
          fail_unless(it != memo_.end(), at, "a memo entry that was never stored");
          push(it->second);
          break;
        }
        case '0': pop(at); break;                        // POP
        case 't': {
          Ptr t = make(Value::Kind::Tuple);
          t->items = pop_to_mark(at);
          push(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {               // TUPLE1..3
          Ptr t = make(Value::Kind::Tuple);
          t->items.resize(size_t(op - 0x84));
          for (size_t i = t->items.size(); i-- > 0;) t->items[i] = pop(at);
          push(t);
          break;
        }
        case 'a': {
          Ptr v = pop(at);
          list_at(at)->items.push_back(v);
          break;
        }
        case 'e': {
          auto items = pop_to_mark(at);
          Ptr l = list_at(at);
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          Ptr v = pop(at), k = pop(at);
          set_item(at, k, v);
          break;
        }
        case 'u': {
          auto items = pop_to_mark(at);
          fail_unless(items.size() % 2 == 0, at, "SETITEMS with an odd number of items");
          for (size_t i = 0; i < items.size(); i += 2) set_item(at, items[i], items[i + 1]);
          break;
        }
        case 'c': {                                      // GLOBAL "module\nname\n"
          std::string module = line(at), name = line(at);
          push_global(at, module + "." + name);
          break;
        }
        case 0x93: {                                     // STACK_GLOBAL
          Ptr name = pop(at), module = pop(at);
          fail_unless(name->kind == Value::Kind::Text && module->kind == Value::Kind::Text, at, "STACK_GLOBAL of non-text");
          push_global(at, module->text + "." + name->text);
          break;
        }
        case 'R': case 0x81: {                           // REDUCE, NEWOBJ
          Ptr args = pop(at), fn = pop(at);
          fail_unless(fn->kind == Value::Kind::Global && args->kind == Value::Kind::Tuple, at,
                      "a call of something other than an allowed global");
          if (fn->text == "_codecs.encode") {  // Python 3's bytes at protocol 2: (text, "latin1")
            fail_unless(args->items.size() == 2 && args->items[0]->kind == Value::Kind::Text, at, "_codecs.encode arguments");
            Ptr t = make(Value::Kind::Text);
            fail_unless(latin1_of_utf8(args->items[0]->text, &t->text), at, "_codecs.encode of non-latin1 text");
            push(t);
            break;
          }
          Ptr o = make(Value::Kind::Object);
          o->text = fn->text;
          o->items = args->items;
          push(o);
          break;
        }
        case 'b': {                                      // BUILD
          Ptr state = pop(at);
          Ptr o = top(at);
          fail_unless(o->kind == Value::Kind::Object, at, "BUILD of something other than an object");
          o->state = state;
          break;
        }
        case '.':                                        // STOP
          fail_unless(stack_.size() == 1, at, "STOP with " + std::to_string(stack_.size()) + " values on the stack");
          return stack_.back();
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          fail(at, std::string("opcode ") + buf + " (outside the subset read here: plain containers and numpy arrays)");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& why) const {
    throw Error(path_ + ": not a pickle this reader takes (byte " + std::to_string(at) + ": " + why + ")");
  }
  void fail_unless(bool ok, size_t at, const std::string& why) const {
    if (!ok) fail(at, why);
  }
  uint8_t u8() {
    fail_unless(pos_ < b_.size(), pos_, "truncated");
    return b_[pos_++];
  }
  std::string take(uint64_t n) {
    fail_unless(n <= b_.size() - pos_, pos_, "truncated (a length of " + std::to_string(n) + " bytes)");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  uint64_t uint_le(size_t n) {
    uint64_t u = 0;
    std::string s = take(n);
    for (size_t i = 0; i < n; ++i) u |= uint64_t(static_cast<unsigned char>(s[i])) << (8 * i);
    return u;
  }
  std::string line(size_t at) {
    size_t nl = pos_;
    while (nl < b_.size() && b_[nl] != '\n') ++nl;
    fail_unless(nl < b_.size(), at, "GLOBAL without its newline");
    std::string s = take(nl - pos_);
    ++pos_;
    return s;
  }
  Ptr make(Value::Kind kind) {
    out_->arena.push_back(std::make_unique<Value>());
    out_->arena.back()->kind = kind;
    return out_->arena.back().get();
  }
  void push(Ptr v) { stack_.push_back(v); }
  void push_int(int64_t i) {
    Ptr v = make(Value::Kind::Int);
    v->i = i;
    push(v);
  }
  void push_text(std::string s) {
    Ptr v = make(Value::Kind::Text);
    v->text = std::move(s);
    push(v);
  }
  void push_global(size_t at, const std::string& name) {
    fail_unless(allowed_global(name), at, "global " + name + " is not allowed");
    Ptr g = make(Value::Kind::Global);
    g->text = name;
    push(g);
  }
  Ptr top(size_t at) {
    fail_unless(!stack_.empty() && (marks_.empty() || stack_.size() > marks_.back()), at, "empty stack");
    return stack_.back();
  }
  Ptr pop(size_t at) {
    Ptr v = top(at);
    stack_.pop_back();
    return v;
  }
  std::vector<Ptr> pop_to_mark(size_t at) {
    fail_unless(!marks_.empty(), at, "no MARK");
    std::vector<Ptr> items(stack_.begin() + std::ptrdiff_t(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Ptr list_at(size_t at) {
    Ptr l = top(at);
    fail_unless(l->kind == Value::Kind::List, at, "APPEND to something other than a list");
    return l;
  }
  void set_item(size_t at, Ptr k, Ptr v) {
    Ptr d = top(at);
    fail_unless(d->kind == Value::Kind::Dict && k->kind == Value::Kind::Text, at, "SETITEM outside a dict of text keys");
    d->dict.emplace_back(k->text, v);
  }

  const std::vector<uint8_t>& b_;
  const std::string& path_;
  Pickle* out_;
  size_t pos_ = 0;
  std::vector<Ptr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, Ptr> memo_;
};

}  // namespace

Pickle parse(const std::vector<uint8_t>& bytes, const std::string& path) {
  Pickle p;
  p.root = Machine(bytes, path, &p).run();
  return p;
}

U8Array numpy_u8(const Value& v, const std::string& path, const std::string& what) {
  auto bad = [&](const std::string& why) { throw Error(path + ": '" + what + "' is not a numpy uint8 array (" + why + ")"); };
  if (v.kind != Value::Kind::Object || v.text.find("_reconstruct") == std::string::npos || !v.state) bad("no array");
  // numpy's ndarray.__setstate__: (version, shape, dtype, is_fortran, raw data).
  const Value& s = *v.state;
  if (s.kind != Value::Kind::Tuple || s.items.size() != 5) bad("its state is not numpy's 5-tuple");
  const Value& shape = *s.items[1];
  const Value& dtype = *s.items[2];
  const Value& data = *s.items[4];
  if (shape.kind != Value::Kind::Tuple) bad("no shape");
  if (dtype.kind != Value::Kind::Object || dtype.items.empty() || dtype.items[0]->kind != Value::Kind::Text ||
      dtype.items[0]->text != "u1")
    bad("dtype is not u1");
  if (s.items[3]->kind != Value::Kind::Int || s.items[3]->i != 0) bad("Fortran order");
  if (data.kind != Value::Kind::Text) bad("its data is not raw bytes");
  U8Array a;
  int64_t count = 1;
  for (const auto& d : shape.items) {
    if (d->kind != Value::Kind::Int || d->i < 0 || d->i > (int64_t(1) << 40)) bad("a bad dimension");
    a.shape.push_back(d->i);
    count *= d->i;
    if (count > (int64_t(1) << 40)) bad("more than 2^40 values");
  }
  if (uint64_t(count) != data.text.size())
    bad("shape holds " + std::to_string(count) + " values, its data " + std::to_string(data.text.size()) + " bytes");
  a.bytes = &data.text;
  return a;
}

}  // namespace macer::data::pickle
