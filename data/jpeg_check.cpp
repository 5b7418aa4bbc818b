// data/jpeg_check.h: the JPEG marker walk (ITU T.81 B.1) as stb_image 2.27 reads it: stray bytes
// between segments skipped, 2-byte big-endian segment lengths, bytes past the end read as 0,
// entropy-coded data after SOS skipped up to the next marker.
#include "data/jpeg_check.h"

#include "kernels/check.h"

namespace macer::data {

namespace {

// A DHT segment's payload of `declared` bytes, of which `have` are in the file: tables of
// [class/id byte, 16 code counts, the symbols]. stb_image reads missing bytes as 0 and builds
// each table from its counts before anything else, so each table's count sum must be <= 256.
void check_dht(const uint8_t* p, size_t have, size_t declared, const std::string& path) {
  auto byte = [&](size_t i) { return i < have ? p[i] : uint8_t(0); };
  for (size_t at = 0; at < declared;) {
    size_t codes = 0;
    for (size_t i = 1; i <= 16; ++i) codes += byte(at + i);
    MACER_CHECK(codes <= 256, path << ": corrupt JPEG (a Huffman table declares " << codes << " codes, at most 256)");
    at += 17 + codes;
  }
}

bool is_rst(uint8_t m) { return m >= 0xD0 && m <= 0xD7; }

}  // namespace

void check_jpeg_tables(const uint8_t* b, size_t size, const std::string& path) {
  if (size < 4 || b[0] != 0xFF || b[1] != 0xD8) return;  // not a JPEG
  size_t pos = 2;
  while (pos + 1 < size) {
    if (b[pos] != 0xFF) {  // a stray byte: the decoder skips it looking for a marker
      ++pos;
      continue;
    }
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9 || marker == 0x00) return;  // EOI, or a marker the decoder refuses
    if (marker == 0x01 || is_rst(marker) || marker == 0xD8) {  // markers without a length
      pos += 2;
      continue;
    }
    if (pos + 4 > size) return;
    const size_t len = size_t(b[pos + 2]) << 8 | b[pos + 3];  // includes its own two bytes
    if (len < 2) return;
    if (marker == 0xC4) check_dht(b + pos + 4, size - (pos + 4), len - 2, path);
    pos += 2 + len;
    if (marker == 0xDA)  // entropy-coded data up to the next marker (FF 00 and RSTn belong to it)
      while (pos + 1 < size && !(b[pos] == 0xFF && b[pos + 1] != 0x00 && !is_rst(b[pos + 1]))) ++pos;
  }
}

}  // namespace macer::data
