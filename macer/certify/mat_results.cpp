// MAT v5 writer for certification radii (see mat_results.h). Layout (MathWorks, "MAT-File
// Format"): a 128-byte header (116 bytes of text, 8 bytes subsystem offset, version 0x0100,
// endian mark "IM"), then per variable one miMATRIX element holding four sub-elements, each an
// 8-byte tag (type, bytes) and data padded to 8 bytes: array flags, dimensions, name, real part.
#include "macer/certify/mat_results.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "kernels/check.h"

namespace macer {

namespace {

constexpr uint32_t miINT8 = 1, miINT32 = 5, miUINT32 = 6, miDOUBLE = 9, miMATRIX = 14;
constexpr uint32_t mxDOUBLE_CLASS = 6;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

void pad8(std::string& out) {
  while (out.size() % 8) out.push_back('\0');
}

// One sub-element: tag (type, byte count), the data, zero padding to 8 bytes.
void put_element(std::string& out, uint32_t type, const void* data, size_t bytes) {
  put_u32(out, type);
  put_u32(out, uint32_t(bytes));
  out.append(static_cast<const char*>(data), bytes);
  pad8(out);
}

std::string matrix_element(const std::string& name, const std::vector<double>& values) {
  std::string body;
  const uint32_t flags[2] = {mxDOUBLE_CLASS, 0};  // class in the low byte; not complex/global/logical
  put_element(body, miUINT32, flags, sizeof flags);
  const int32_t dims[2] = {1, int32_t(values.size())};  // 1 x N, as savemat writes a 1-d array
  put_element(body, miINT32, dims, sizeof dims);
  put_element(body, miINT8, name.data(), name.size());
  std::string real(values.size() * sizeof(double), '\0');  // little-endian IEEE doubles
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(&real[i * sizeof(double)], &values[i], sizeof(double));
  put_element(body, miDOUBLE, real.data(), real.size());
  std::string out;
  put_u32(out, miMATRIX);
  put_u32(out, uint32_t(body.size()));
  return out + body;
}

}  // namespace

std::string mat5_double_rows(const std::vector<std::pair<std::string, std::vector<double>>>& variables) {
  static_assert(sizeof(double) == 8, "IEEE doubles");
  uint16_t probe = 1;
  uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  MACER_CHECK(first == 1, "the MAT writer assumes a little-endian host");
  std::string out = "MATLAB 5.0 MAT-file, Platform: macer-engine, Created by: macer_certify";
  out.resize(116, ' ');
  out.append(8, '\0');           // subsystem data offset: none
  out += std::string("\x00\x01", 2);  // version 0x0100, little-endian
  out += "IM";                   // endian indicator: reads "MI" on a big-endian machine
  for (const auto& [name, values] : variables) {
    MACER_CHECK(!name.empty() && name.size() <= 63, "MAT variable name '" << name << "'");
    MACER_CHECK(values.size() < (size_t(1) << 28), "MAT variable '" << name << "' is too large");
    out += matrix_element(name, values);
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<double>>> mat_variables(const std::vector<CertifyRow>& rows,
                                                                        TsvKind kind, bool soft_only) {
  MACER_CHECK(kind != TsvKind::Predict, "--mat holds certified radii: PREDICT has none");
  std::vector<double> hard, soft;
  for (const CertifyRow& r : rows) {
    hard.push_back(r.correct ? r.radius : -1.0);
    soft.push_back(r.soft_correct ? r.soft_radius : -1.0);
  }
  if (kind == TsvKind::Both) return {{"hard", hard}, {"soft", soft}};
  return {{soft_only ? "soft" : "hard", hard}};  // a soft-only run keeps its certificate in radius
}

void write_mat_results(const std::string& path, const std::vector<CertifyRow>& rows, TsvKind kind, bool soft_only) {
  write_file_atomic(path, mat5_double_rows(mat_variables(rows, kind, soft_only)));
}

}  // namespace macer
