// Training subsets (data.train_count): a class-balanced sample drawn with the run's seed, and the
// class counts of a selection, which the startup lines print. Sits beside data/loader.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace macer::data {

// `count` indices of `dataset`, ascending: the images are shuffled with `seed` (Fisher-Yates on
// mt19937_64, as the loader), then taken round by round, one of each class per round in class
// order, so every class gets count / classes images (one more for the first count % classes)
// until a class runs out. Depends only on (dataset labels, count, seed). Throws macer::Error
// unless 1 <= count <= dataset.size().
std::vector<int64_t> class_balanced_sample(const Dataset& dataset, int64_t count, uint64_t seed);

// Images per class (size dataset.classes()) among `indices`.
std::vector<int64_t> class_counts(const Dataset& dataset, const std::vector<int64_t>& indices);

// "4 of 4 classes, 2 to 3 images each" / "1 of 4 classes (0: 8 images)": what a selection covers,
// for startup lines. Classes named by their class_names() where the data set has them.
std::string describe_classes(const Dataset& dataset, const std::vector<int64_t>& counts);

}  // namespace macer::data
