// data/jpeg_check.h: the JPEG marker walk (ITU T.81 B.1): FF xx markers, 2-byte big-endian
// segment lengths, entropy-coded data after SOS skipped up to the next marker.
#include "data/jpeg_check.h"

#include "kernels/check.h"

namespace macer::data {

namespace {

// A DHT segment's payload: tables of [class/id byte, 16 code counts, sum(counts) symbols].
void check_dht(const uint8_t* p, size_t len, const std::string& path) {
  size_t at = 0;
  while (at < len) {
    MACER_CHECK(len - at >= 17, path << ": corrupt JPEG (a Huffman table header runs past its segment)");
    size_t codes = 0;
    for (int i = 1; i <= 16; ++i) codes += p[at + size_t(i)];
    MACER_CHECK(codes <= 256, path << ": corrupt JPEG (a Huffman table declares " << codes << " codes, at most 256)");
    MACER_CHECK(len - at - 17 >= codes, path << ": corrupt JPEG (a Huffman table runs past its segment)");
    at += 17 + codes;
  }
}

}  // namespace

void check_jpeg_tables(const uint8_t* b, size_t size, const std::string& path) {
  if (size < 4 || b[0] != 0xFF || b[1] != 0xD8) return;  // not a JPEG
  size_t pos = 2;
  while (pos + 4 <= size) {
    if (b[pos] != 0xFF) return;  // not at a marker: the decoder will say what is wrong
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9) return;  // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // markers without a length
      pos += 2;
      continue;
    }
    const size_t len = size_t(b[pos + 2]) << 8 | b[pos + 3];  // includes its own two bytes
    if (len < 2 || pos + 2 + len > size) return;            // truncated: the decoder refuses it
    if (marker == 0xC4) check_dht(b + pos + 4, len - 2, path);
    pos += 2 + len;
    if (marker == 0xDA)  // entropy-coded data up to the next marker (FF 00 and RSTn belong to it)
      while (pos + 1 < size && !(b[pos] == 0xFF && b[pos + 1] != 0x00 && !(b[pos + 1] >= 0xD0 && b[pos + 1] <= 0xD7)))
        ++pos;
  }
}

}  // namespace macer::data
