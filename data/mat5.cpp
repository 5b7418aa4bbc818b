// A reader for MATLAB level-5 .mat files (see mat5.h): header check, top-level data elements,
// miCOMPRESSED inflated through zlib, miMATRIX sub-elements (flags, dims, name, real part).
#include "data/mat5.h"

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "data/io.h"
#include "kernels/check.h"

namespace macer::data::mat5 {

namespace {

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

template <typename T> T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// One data element: its type, its data, and the bytes it takes (tag, data, padding).
struct Element {
  uint32_t type = 0;
  size_t data_offset = 0, nbytes = 0, total = 0;
};

// The element whose tag starts at `at` in buf[0, end). Small elements pack type and size
// into 4 bytes and their data into the next 4. `pad`: data is padded to 8 bytes (sub-elements).
Element read_tag(const std::vector<uint8_t>& buf, size_t at, size_t end, bool pad, const std::string& where) {
  MACER_CHECK(end >= at && end - at >= 8, where << ": truncated data element tag at byte " << at);
  const uint8_t* p = buf.data() + at;
  Element e;
  uint32_t w0 = le32(p);
  if ((w0 >> 16) != 0) {  // small data element format
    e.type = w0 & 0xffff;
    e.nbytes = w0 >> 16;
    MACER_CHECK(e.nbytes <= 4, where << ": bad small data element at byte " << at << " (" << e.nbytes << " bytes)");
    e.data_offset = at + 4;
    e.total = 8;
    return e;
  }
  e.type = w0;
  e.nbytes = le32(p + 4);
  e.data_offset = at + 8;
  MACER_CHECK(e.nbytes <= end - at - 8, where << ": truncated data element at byte " << at << " (type " << e.type
                                              << " declares " << e.nbytes << " bytes, " << (end - at - 8)
                                              << " remain)");
  size_t padded = pad ? (e.nbytes + 7) / 8 * 8 : e.nbytes;
  e.total = 8 + std::min(padded, end - at - 8);
  return e;
}

// Inflates one miCOMPRESSED element: a zlib stream holding exactly one data element.
std::shared_ptr<std::vector<uint8_t>> inflate_element(const uint8_t* src, size_t n, const std::string& where) {
  z_stream zs{};
  MACER_CHECK(inflateInit(&zs) == Z_OK, where << ": zlib inflateInit failed");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end_guard{&zs};  // frees zlib's state on every way out
  auto out = std::make_shared<std::vector<uint8_t>>(8);
  zs.next_in = const_cast<Bytef*>(src);
  size_t in_left = n;
  size_t produced = 0;
  int rc = Z_OK;
  // Feed input in pieces that fit zlib's 32-bit counters, filling `out` up to its size.
  auto pump = [&](size_t want) {
    while (produced < want && rc == Z_OK) {
      zs.next_out = out->data() + produced;
      zs.avail_out = uInt(std::min<size_t>(want - produced, 1u << 30));
      if (zs.avail_in == 0) {
        zs.avail_in = uInt(std::min<size_t>(in_left, 1u << 30));
        in_left -= zs.avail_in;
      }
      uInt before = zs.avail_out;
      rc = inflate(&zs, Z_NO_FLUSH);
      produced += before - zs.avail_out;
      if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) break;  // input ran out
      if (rc == Z_BUF_ERROR) rc = Z_OK;
    }
  };
  pump(8);  // the inner element's tag gives the total size
  if (produced == 8) {
    uint32_t w0 = le32(out->data());
    size_t inner = (w0 >> 16) != 0 ? 8 : 8 + size_t(le32(out->data() + 4));
    // zlib cannot compress better than about 1032:1; a larger claim is corrupt data.
    MACER_CHECK(inner <= 1100 * n + 1024,
                where << ": corrupt compressed element (claims " << inner << " bytes from " << n << ")");
    out->resize(inner);
    pump(inner);
  }
  const std::string msg = zs.msg ? zs.msg : "";
  MACER_CHECK(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR,
              where << ": corrupt compressed element (zlib: " << (msg.empty() ? std::to_string(rc) : msg) << ")");
  MACER_CHECK(produced == out->size(), where << ": truncated compressed element (inflated " << produced << " of "
                                             << out->size() << " bytes)");
  return out;
}

// A numeric miMATRIX element's variable, or false for classes that are skipped.
bool parse_matrix(const std::shared_ptr<const std::vector<uint8_t>>& buf, const Element& m, const std::string& where,
                  Array& a) {
  const std::vector<uint8_t>& b = *buf;
  size_t at = m.data_offset, end = m.data_offset + m.nbytes;
  if (m.nbytes == 0) return false;  // an empty matrix placeholder

  Element flags = read_tag(b, at, end, true, where);
  MACER_CHECK(flags.type == miUINT32 && flags.nbytes == 8,
              where << ": bad array flags in matrix at byte " << m.data_offset);
  uint32_t f = le32(b.data() + flags.data_offset);
  a.mx_class = int(f & 0xff);
  a.complex = (f & 0x0800) != 0;
  at += flags.total;
  if (a.mx_class < mxDOUBLE_CLASS || a.mx_class > mxUINT64_CLASS) return false;  // cell, struct, char, sparse...

  Element dims = read_tag(b, at, end, true, where);
  MACER_CHECK(dims.type == miINT32 && dims.nbytes >= 8 && dims.nbytes % 4 == 0,
              where << ": bad dimensions element in matrix at byte " << m.data_offset);
  for (size_t k = 0; k < dims.nbytes / 4; ++k) {
    int32_t d = load<int32_t>(b.data() + dims.data_offset + 4 * k);
    MACER_CHECK(d >= 0, where << ": negative dimension " << d << " in matrix at byte " << m.data_offset);
    a.dims.push_back(d);
  }
  at += dims.total;

  Element name = read_tag(b, at, end, true, where);
  MACER_CHECK(name.type == miINT8 || name.type == miUINT8,
              where << ": bad array name element in matrix at byte " << m.data_offset);
  a.name.assign(reinterpret_cast<const char*>(b.data() + name.data_offset), name.nbytes);
  at += name.total;

  Element real = read_tag(b, at, end, true, where);
  const size_t ts = type_size(real.type);
  MACER_CHECK(ts > 0, where << ": variable '" << a.name << "' has real part of unsupported type " << real.type);
  // numel with an overflow guard: it must fit the bytes present anyway.
  uint64_t numel = 1;
  for (int64_t d : a.dims) {
    MACER_CHECK(d == 0 || numel <= (uint64_t(1) << 56) / uint64_t(d),
                where << ": variable '" << a.name << "' has impossibly large dimensions");
    numel *= uint64_t(d);
  }
  MACER_CHECK(real.nbytes == numel * ts, where << ": variable '" << a.name << "' holds " << real.nbytes
                                               << " bytes of data, its dimensions need " << numel * ts);
  a.data_type = real.type;
  a.buffer = buf;
  a.offset = real.data_offset;
  a.nbytes = real.nbytes;
  return true;
}

}  // namespace

size_t type_size(uint32_t t) {
  switch (t) {
    case miINT8: case miUINT8: return 1;
    case miINT16: case miUINT16: return 2;
    case miINT32: case miUINT32: case miSINGLE: return 4;
    case miDOUBLE: case miINT64: case miUINT64: return 8;
    default: return 0;
  }
}

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

double Array::value(int64_t k) const {
  const uint8_t* p = real() + size_t(k) * type_size(data_type);
  switch (data_type) {
    case miINT8: return load<int8_t>(p);
    case miUINT8: return load<uint8_t>(p);
    case miINT16: return load<int16_t>(p);
    case miUINT16: return load<uint16_t>(p);
    case miINT32: return load<int32_t>(p);
    case miUINT32: return load<uint32_t>(p);
    case miSINGLE: return load<float>(p);
    case miDOUBLE: return load<double>(p);
    case miINT64: return double(load<int64_t>(p));
    case miUINT64: return double(load<uint64_t>(p));
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

std::vector<uint8_t> Array::to_u8(const std::string& what) const {
  const int64_t n = numel();
  if (data_type == miUINT8) return std::vector<uint8_t>(real(), real() + n);
  std::vector<uint8_t> out(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    double v = value(k);
    MACER_CHECK(v >= 0 && v <= 255 && v == std::floor(v),
                what << ": value " << v << " at element " << k << " is not an integer in 0..255");
    out[size_t(k)] = uint8_t(v);
  }
  return out;
}

std::vector<double> Array::to_f64() const {
  std::vector<double> out(static_cast<size_t>(numel()));
  for (size_t k = 0; k < out.size(); ++k) out[k] = value(int64_t(k));
  return out;
}

std::vector<Array> parse(std::shared_ptr<const std::vector<uint8_t>> bytes, const std::string& path) {
  const std::vector<uint8_t>& b = *bytes;
  MACER_CHECK(b.size() >= 128, path << ": too short for a MAT-file header (" << b.size() << " bytes, expected 128)");
  const std::string text(reinterpret_cast<const char*>(b.data()), 116);
  const uint16_t version = uint16_t(b[124] | b[125] << 8);
  MACER_CHECK(text.rfind("MATLAB 7.3", 0) != 0 && version != 0x0200,
              path << ": a MATLAB v7.3 (HDF5) file; only level-5 .mat files are read (save with -v7)");
  MACER_CHECK(!(b[126] == 'M' && b[127] == 'I'), path << ": big-endian MAT-file, not supported");
  MACER_CHECK(text.rfind("MATLAB 5.0 MAT-file", 0) == 0 && version == 0x0100 && b[126] == 'I' && b[127] == 'M',
              path << ": not a MATLAB level-5 MAT-file (bad 128-byte header)");

  std::vector<Array> arrays;
  size_t at = 128;
  while (at < b.size()) {
    Element e = read_tag(b, at, b.size(), false, path);
    if (e.type == miCOMPRESSED) {
      std::string where = path + " (compressed element at byte " + std::to_string(at) + ")";
      std::shared_ptr<const std::vector<uint8_t>> inner = inflate_element(b.data() + e.data_offset, e.nbytes, where);
      Element m = read_tag(*inner, 0, inner->size(), false, where);
      Array a;
      if (m.type == miMATRIX && parse_matrix(inner, m, where, a)) arrays.push_back(std::move(a));
    } else if (e.type == miMATRIX) {
      Array a;
      if (parse_matrix(bytes, e, path, a)) arrays.push_back(std::move(a));
    }
    at += e.total;
  }
  return arrays;
}

std::vector<Array> read_file(const std::string& path) {
  return parse(std::make_shared<const std::vector<uint8_t>>(io::read_file(path)), path);
}

}  // namespace macer::data::mat5
