// A guard in front of stb_image's JPEG decoder: Debian's stb_image 2.27 writes out of bounds
// when a Huffman table (DHT) declares more than 256 codes (found by tests/test_fuzz_data.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace macer::data {

// Walks the marker segments of a JPEG (bytes starting FF D8; anything else is left alone) as the
// decoder will, and throws macer::Error naming `path` when a DHT segment holds a table of more
// than 256 codes. Other faults are left for the decoder to refuse.
void check_jpeg_tables(const uint8_t* bytes, size_t size, const std::string& path);

}  // namespace macer::data
