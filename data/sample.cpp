// data/sample.h: the class-balanced training subset and the class counts of a selection.
#include "data/sample.h"

#include <algorithm>
#include <random>

#include "data/seed.h"
#include "kernels/check.h"

namespace macer::data {

namespace {
constexpr uint64_t kSubsetSalt = 0x5355425345542121ull;  // "SUBSET!!": apart from the shuffle's stream
}  // namespace

std::vector<int64_t> class_balanced_sample(const Dataset& dataset, int64_t count, uint64_t seed) {
  const int64_t n = dataset.size();
  MACER_CHECK(count >= 1 && count <= n, "sample of " << count << " images from the " << n << " of " << dataset.name());
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::mt19937_64 rng(mix_seed(seed ^ kSubsetSalt, 0, 0));
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[size_t(rng() % (i + 1))]);
  // Each class's images in shuffled order; round r takes the r-th of every class that has one.
  std::vector<std::vector<int64_t>> by_class(size_t(dataset.classes()));
  for (int64_t i : order) by_class[size_t(dataset.label(i))].push_back(i);
  std::vector<int64_t> picked;
  picked.reserve(size_t(count));
  for (size_t round = 0; int64_t(picked.size()) < count; ++round)
    for (const auto& images : by_class)
      if (round < images.size() && int64_t(picked.size()) < count) picked.push_back(images[round]);
  std::sort(picked.begin(), picked.end());
  return picked;
}

std::vector<int64_t> class_counts(const Dataset& dataset, const std::vector<int64_t>& indices) {
  std::vector<int64_t> counts(size_t(dataset.classes()), 0);
  for (int64_t i : indices) ++counts[size_t(dataset.label(i))];
  return counts;
}

std::string describe_classes(const Dataset& dataset, const std::vector<int64_t>& counts) {
  int64_t covered = 0, lo = -1, hi = 0;
  for (int64_t c : counts)
    if (c > 0) {
      ++covered;
      lo = lo < 0 ? c : std::min(lo, c);
      hi = std::max(hi, c);
    }
  std::string out = std::to_string(covered) + " of " + std::to_string(counts.size()) + " classes";
  if (covered == 0) return out;
  if (covered < int64_t(counts.size())) {  // name the classes covered
    const std::vector<std::string> names = dataset.class_names();
    std::string list;
    for (size_t c = 0; c < counts.size(); ++c)
      if (counts[c] > 0)
        list += (list.empty() ? "" : ", ") + (c < names.size() ? names[c] : std::to_string(c)) + ": " +
                std::to_string(counts[c]);
    return out + " (" + list + ")";
  }
  return out + ", " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) +
         " images each";
}

}  // namespace macer::data
