// The identity of a data set's decoded content: a digest of its labels and pixels, and the
// official files it recognises. Part of data/; checkpoints record it (macer/checkpoint.h).
#pragma once
#include <string>

#include "data/dataset.h"

namespace macer::data {

// "fnv1a64:<16 hex digits>/<N> images": FNV-1a (64 bit) over the image count, shape, class
// count, then each image's label (int32 LE) and its pixels rounded to bytes (round(255 v)),
// CHW. Independent of the file format (raw, .gz, '.'-named copies give the same value).
// Empty for data sets that decode from disk on access (image folders): reading all of them
// would cost a pass over the files.
std::string content_fingerprint(const Dataset& set);

// The official files a fingerprint belongs to, e.g. "fashion-mnist test" (Zalando's
// t10k files), or "" when it is none this engine knows.
std::string recognise_fingerprint(const std::string& fingerprint);

}  // namespace macer::data
