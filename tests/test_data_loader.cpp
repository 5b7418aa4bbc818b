// data/ tests, part 4: augmentation (crop and flip on a known image, determinism) and the
// loader (shuffle, selection, drop_last, threaded == synchronous, errors, clean shutdown), and
// data.train_count's class-balanced sample.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/sample.h"
#include "data_test_util.h"
#include "kernels/check.h"

using namespace macer;
using namespace data_test;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<data::Dataset> synthetic(int64_t n, uint64_t seed = 3) {
  data::DatasetOptions o;
  o.synthetic_size = n;
  o.synthetic_channels = 3;
  o.synthetic_height = 6;
  o.synthetic_width = 5;
  o.synthetic_classes = 7;
  o.seed = seed;
  return data::open_dataset("synthetic", "", "train", o);
}

// Every batch of one epoch, images and labels as host vectors.
struct Epoch {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int32_t>> labels;
  std::vector<int64_t> indices, firsts;
};

Epoch run_epoch(data::Loader& loader, int epoch) {
  Epoch e;
  loader.begin_epoch(epoch);
  data::Batch b;
  while (loader.next(b)) {
    REQUIRE(b.images.dtype() == DType::F32);
    REQUIRE(b.labels.dtype() == DType::I32);
    REQUIRE(b.images.device() == Device::CPU);
    REQUIRE(b.images.dim(0) == b.labels.dim(0));
    REQUIRE(int64_t(b.indices.size()) == b.labels.dim(0));
    REQUIRE(b.first_index == b.indices[0]);
    e.images.push_back(b.images.to_vector());
    e.labels.push_back(b.labels.to_ints());
    e.indices.insert(e.indices.end(), b.indices.begin(), b.indices.end());
    e.firsts.push_back(b.first_index);
  }
  return e;
}

// A data set whose image `bad` throws, and whose images can be slowed down.
class Faulty : public data::Dataset {
 public:
  Faulty(int64_t n, int64_t bad, int delay_ms = 0) : n_(n), bad_(bad), delay_ms_(delay_ms) {}
  int64_t size() const override { return n_; }
  int channels() const override { return 1; }
  int height() const override { return 2; }
  int width() const override { return 2; }
  int classes() const override { return 10; }
  int32_t label(int64_t i) const override { return int32_t(i % 10); }
  void image(int64_t i, float* out) const override {
    if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    MACER_CHECK(i != bad_, "faulty: image " << i << " is unreadable");
    for (int k = 0; k < 4; ++k) out[k] = float(i) + 0.25f * float(k);
    ++reads;
  }
  std::string name() const override { return "faulty"; }
  mutable std::atomic<int64_t> reads{0};

 private:
  int64_t n_, bad_;
  int delay_ms_;
};

}  // namespace

TEST_CASE("augmentation: crop shifts with zero padding, flip mirrors, on a known image") {
  // One 2x3x4 image with value 100 c + 10 y + x.
  const int C = 2, H = 3, W = 4;
  std::vector<float> in(C * H * W), out(C * H * W);
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) in[size_t((c * H + y) * W + x)] = float(100 * c + 10 * y + x);
  auto at = [&](int c, int y, int x) { return out[size_t((c * H + y) * W + x)]; };

  data::apply_augment(in.data(), out.data(), C, H, W, data::AugmentDraw{0, 0, false});
  REQUIRE(out == in);
  // Shift down-right window: out[y][x] = in[y+1][x-2], zero outside.
  data::apply_augment(in.data(), out.data(), C, H, W, data::AugmentDraw{1, -2, false});
  REQUIRE(at(1, 0, 2) == 110 + 0);
  REQUIRE(at(0, 1, 3) == 20 + 1);
  REQUIRE(at(0, 0, 1) == 0);  // x - 2 < 0
  REQUIRE(at(1, 2, 3) == 0);  // y + 1 == H
  // Flip only: out[y][x] = in[y][W-1-x].
  data::apply_augment(in.data(), out.data(), C, H, W, data::AugmentDraw{0, 0, true});
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) REQUIRE(at(c, y, x) == in[size_t((c * H + y) * W + (W - 1 - x))]);
  // Crop then flip: out[y][x] = in[y+dy][(W-1-x)+dx].
  data::apply_augment(in.data(), out.data(), C, H, W, data::AugmentDraw{-1, 1, true});
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        int sy = y - 1, sx = W - 1 - x + 1;
        float want = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? in[size_t((c * H + sy) * W + sx)] : 0.0f;
        REQUIRE(at(c, y, x) == want);
      }
}

TEST_CASE("augmentation draws are keyed by (seed, epoch, index), in range, and cover every choice") {
  data::AugmentOptions opt;
  opt.crop = opt.flip = true;
  opt.padding = 4;
  std::set<int> dys, dxs;
  int flips = 0, differ_seed = 0, differ_epoch = 0;
  for (int64_t i = 0; i < 2000; ++i) {
    data::AugmentDraw d = data::draw_augment(opt, 5, 2, i), e = data::draw_augment(opt, 5, 2, i);
    REQUIRE((d.dy == e.dy && d.dx == e.dx && d.flip == e.flip));
    REQUIRE((d.dy >= -4 && d.dy <= 4 && d.dx >= -4 && d.dx <= 4));
    dys.insert(d.dy);
    dxs.insert(d.dx);
    flips += d.flip;
    data::AugmentDraw s = data::draw_augment(opt, 6, 2, i), p = data::draw_augment(opt, 5, 3, i);
    differ_seed += s.dy != d.dy || s.dx != d.dx || s.flip != d.flip;
    differ_epoch += p.dy != d.dy || p.dx != d.dx || p.flip != d.flip;
  }
  REQUIRE(dys.size() == 9);
  REQUIRE(dxs.size() == 9);
  REQUIRE((flips > 900 && flips < 1100));
  REQUIRE(differ_seed > 1800);
  REQUIRE(differ_epoch > 1800);
  // Options off: no change.
  data::AugmentDraw none = data::draw_augment(data::AugmentOptions{}, 5, 2, 7);
  REQUIRE((none.dy == 0 && none.dx == 0 && !none.flip));
}

TEST_CASE("loader: each epoch is a permutation, reproducible from (seed, epoch)") {
  auto ds = synthetic(103);
  data::LoaderOptions o;
  o.batch = 10;
  o.shuffle = true;
  o.seed = 42;
  data::Loader a(*ds, o), b(*ds, o);
  REQUIRE(a.batches_per_epoch() == 11);
  Epoch a0 = run_epoch(a, 0), a1 = run_epoch(a, 1);
  std::vector<int64_t> sorted = a0.indices;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 103; ++i) REQUIRE(sorted[size_t(i)] == i);
  REQUIRE(a0.indices != a1.indices);
  REQUIRE(a0.labels.back().size() == 3);  // the last, partial batch
  // Another loader, epochs in another order: the same permutations.
  Epoch b1 = run_epoch(b, 1), b0 = run_epoch(b, 0);
  REQUIRE(b0.indices == a0.indices);
  REQUIRE(b1.indices == a1.indices);
  REQUIRE(a.epoch_order(1) == a1.indices);
  // Another seed: another permutation. No shuffle: dataset order.
  o.seed = 43;
  REQUIRE(data::Loader(*ds, o).epoch_order(0) != a0.indices);
  o.shuffle = false;
  std::vector<int64_t> plain = data::Loader(*ds, o).epoch_order(5);
  for (int64_t i = 0; i < 103; ++i) REQUIRE(plain[size_t(i)] == i);
}

TEST_CASE("loader: rows hold the data set's images and labels, augmented as augment_image does") {
  auto ds = synthetic(37);
  data::LoaderOptions o;
  o.batch = 8;
  o.shuffle = true;
  o.seed = 9;
  for (bool augment : {false, true}) {
    o.augment_crop = o.augment_flip = augment;
    o.crop_padding = 2;
    data::Loader loader(*ds, o);
    Epoch e = run_epoch(loader, 3);
    const size_t numel = size_t(ds->image_numel());
    std::vector<float> img(numel), want(numel);
    data::AugmentOptions aopt{augment, 2, augment};
    size_t row = 0;
    for (size_t b = 0; b < e.images.size(); ++b)
      for (size_t r = 0; r < e.labels[b].size(); ++r, ++row) {
        const int64_t idx = e.indices[row];
        REQUIRE(e.labels[b][r] == ds->label(idx));
        ds->image(idx, img.data());
        if (augment)
          data::augment_image(img.data(), want.data(), 3, 6, 5, aopt, 9, 3, idx);
        else
          want = img;
        REQUIRE(std::equal(want.begin(), want.end(), e.images[b].begin() + long(r * numel)));
      }
    REQUIRE(row == 37);
  }
}

TEST_CASE("loader: the prefetch thread and parallel workers give exactly the synchronous batches") {
  auto ds = synthetic(250);
  data::LoaderOptions o;
  o.batch = 16;
  o.shuffle = o.augment_crop = o.augment_flip = true;
  o.seed = 77;
  o.prefetch = 0;
  data::Loader sync(*ds, o);
  o.prefetch = 3;
  data::Loader threaded(*ds, o);
  o.workers = 4;
  data::Loader parallel(*ds, o);
  for (int epoch : {0, 1, 7}) {
    Epoch s = run_epoch(sync, epoch), t = run_epoch(threaded, epoch), p = run_epoch(parallel, epoch);
    REQUIRE(s.images.size() == 16);
    REQUIRE(s.images == t.images);
    REQUIRE(s.labels == t.labels);
    REQUIRE(s.indices == t.indices);
    REQUIRE(s.firsts == t.firsts);
    REQUIRE(s.images == p.images);
    REQUIRE(s.labels == p.labels);
  }
}

TEST_CASE("loader: shards of every batch put together are the whole batch (data parallelism)") {
  auto ds = synthetic(250);
  data::LoaderOptions o;
  o.batch = 12;
  o.shuffle = o.augment_crop = o.augment_flip = o.drop_last = true;
  o.seed = 5;
  data::Loader whole(*ds, o);
  Epoch w = run_epoch(whole, 3);
  for (int shards : {2, 3, 4}) {
    INFO(shards << " shards");
    std::vector<Epoch> parts;
    for (int r = 0; r < shards; ++r) {
      o.shard = r, o.shards = shards;
      data::Loader part(*ds, o);
      REQUIRE(part.batches_per_epoch() == whole.batches_per_epoch());
      parts.push_back(run_epoch(part, 3));
    }
    for (size_t b = 0; b < w.images.size(); ++b) {
      std::vector<float> images;
      std::vector<int32_t> labels;
      for (const Epoch& p : parts) {
        images.insert(images.end(), p.images[b].begin(), p.images[b].end());
        labels.insert(labels.end(), p.labels[b].begin(), p.labels[b].end());
      }
      CHECK(images == w.images[b]);
      CHECK(labels == w.labels[b]);
    }
  }
  o.shard = 0, o.shards = 5;  // 12 rows do not split into 5 equal shares
  CHECK_THROWS_WITH(data::Loader(*ds, o), Catch::Contains("does not split into 5"));
}

TEST_CASE("loader: drop_last, and selection by start, count and skip") {
  auto ds = synthetic(100);
  data::LoaderOptions o;
  o.batch = 4;
  o.count = 10;
  o.drop_last = true;
  {
    data::Loader l(*ds, o);
    REQUIRE(l.batches_per_epoch() == 2);
    Epoch e = run_epoch(l, 0);
    REQUIRE(e.labels.size() == 2);
    REQUIRE(e.indices == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  }
  o.drop_last = false;
  {
    data::Loader l(*ds, o);
    REQUIRE(l.batches_per_epoch() == 3);
    Epoch e = run_epoch(l, 0);
    REQUIRE(e.labels.back().size() == 2);
    REQUIRE(e.firsts == std::vector<int64_t>{0, 4, 8});
  }
  o.start = 5;
  o.skip = 3;
  {
    data::Loader l(*ds, o);
    REQUIRE(l.size() == 10);
    Epoch e = run_epoch(l, 0);
    REQUIRE(e.indices == std::vector<int64_t>{5, 8, 11, 14, 17, 20, 23, 26, 29, 32});
    REQUIRE(e.firsts == std::vector<int64_t>{5, 17, 29});
  }
  o.count = -1;  // every third image from 5 to the end: 5, 8, ..., 98
  REQUIRE(data::Loader(*ds, o).size() == 32);
  o.count = 33;
  REQUIRE_THROWS_WITH(data::Loader(*ds, o), Contains("asked for 33 images from index 5 every 3") && Contains("only 32"));
  o.count = -1;
  o.start = 100;
  REQUIRE_THROWS_WITH(data::Loader(*ds, o), Contains("start 100 outside"));
  o.start = 0;
  o.batch = 0;
  REQUIRE_THROWS_WITH(data::Loader(*ds, o), Contains("batch size 0"));
  o.batch = 200;  // larger than the set: no full batch with drop_last
  o.drop_last = true;
  data::Loader none(*ds, o);
  REQUIRE(none.batches_per_epoch() == 0);
  REQUIRE(run_epoch(none, 0).labels.empty());
}

TEST_CASE("loader: an error in the thread reaches the caller after the batches before it") {
  for (int prefetch : {0, 2}) {
    Faulty ds(20, 13);
    data::LoaderOptions o;
    o.batch = 4;
    o.prefetch = prefetch;
    data::Loader l(ds, o);
    l.begin_epoch(0);
    data::Batch b;
    for (int k = 0; k < 3; ++k) REQUIRE(l.next(b));  // rows 0..11
    REQUIRE(b.images.to_vector()[4] == 9.0f);          // image 9, value 0
    REQUIRE_THROWS_WITH(l.next(b), Contains("faulty: image 13 is unreadable"));
    REQUIRE_FALSE(l.next(b));
    // The next epoch starts afresh and fails again in the same place.
    l.begin_epoch(1);
    for (int k = 0; k < 3; ++k) REQUIRE(l.next(b));
    REQUIRE_THROWS_AS(l.next(b), macer::Error);
  }
}

TEST_CASE("loader: stops cleanly mid-epoch, and next() alone starts epoch 0") {
  Faulty slow(400, -1, 1);
  data::LoaderOptions o;
  o.batch = 8;
  o.prefetch = 2;
  {
    data::Loader l(slow, o);
    data::Batch b;
    REQUIRE(l.next(b));  // no begin_epoch: epoch 0
    REQUIRE(b.first_index == 0);
    l.begin_epoch(1);  // abandons epoch 0 mid-way
    REQUIRE(l.next(b));
    REQUIRE(b.first_index == 0);
  }  // destroyed with the thread mid-epoch
  // The thread prepared at most the consumed batches plus the queue and one in progress.
  REQUIRE(slow.reads.load() <= 8 * (2 + 2 + 1 + 1) + 8);
  {
    data::Loader idle(slow, o);  // never started
  }
  {
    data::Loader l(slow, o);
    l.begin_epoch(0);  // destroyed before a single next()
  }
}

TEST_CASE("train_count's sample: class-balanced, seeded, sorted, used by the loader as given") {
  auto ds = synthetic(300);  // 7 classes, labels drawn at random
  const std::vector<int64_t> full = data::class_counts(*ds, [&] {
    std::vector<int64_t> all(300);
    for (int64_t i = 0; i < 300; ++i) all[size_t(i)] = i;
    return all;
  }());
  for (int64_t count : {1, 7, 30, 69, 300}) {
    INFO("count " << count);
    std::vector<int64_t> s = data::class_balanced_sample(*ds, count, 5);
    REQUIRE(int64_t(s.size()) == count);
    CHECK(std::is_sorted(s.begin(), s.end()));
    CHECK(std::set<int64_t>(s.begin(), s.end()).size() == s.size());
    CHECK(s == data::class_balanced_sample(*ds, count, 5));
    // Round by round: a class has min(its images, the rounds it took part in) -- every class
    // that still has images gets floor or ceil of an even share.
    std::vector<int64_t> got = data::class_counts(*ds, s);
    int64_t rounds = 0;
    while (true) {  // the number of full rounds: the largest r with sum min(full, r) <= count
      int64_t taken = 0;
      for (int64_t f : full) taken += std::min(f, rounds + 1);
      if (taken > count) break;
      ++rounds;
      if (rounds > 300) break;
    }
    for (size_t c = 0; c < got.size(); ++c) {
      CHECK(got[c] >= std::min(full[c], rounds));
      CHECK(got[c] <= std::min(full[c], rounds + 1));
    }
  }
  CHECK(data::class_balanced_sample(*ds, 30, 5) != data::class_balanced_sample(*ds, 30, 6));
  REQUIRE_THROWS_WITH(data::class_balanced_sample(*ds, 301, 5), Contains("301") && Contains("300"));
  REQUIRE_THROWS_WITH(data::class_balanced_sample(*ds, 0, 5), Contains("sample of 0"));

  // The loader trains on exactly the given images, each once per epoch.
  data::LoaderOptions o;
  o.batch = 4;
  o.shuffle = true;
  o.indices = data::class_balanced_sample(*ds, 12, 5);
  data::Loader loader(*ds, o);
  CHECK(loader.size() == 12);
  std::vector<int64_t> seen;
  data::Batch b;
  while (loader.next(b)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  std::sort(seen.begin(), seen.end());
  CHECK(seen == o.indices);
  o.indices = {0, 300};
  REQUIRE_THROWS_WITH(data::Loader(*ds, o), Contains("index 300 outside the 300 images"));
}
