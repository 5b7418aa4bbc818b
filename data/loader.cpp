// The batch loader (see loader.h): selection, per-epoch shuffle from (seed, epoch), augment,
// batch; a background thread keeps up to `prefetch` batches ready in a bounded queue.
#include "data/loader.h"

#include <algorithm>
#include <random>

#include "data/seed.h"
#include "kernels/check.h"

namespace macer::data {

Loader::Loader(const Dataset& dataset, const LoaderOptions& options) : dataset_(dataset), opt_(options) {
  const int64_t n = dataset.size();
  MACER_CHECK(opt_.batch >= 1, "loader: batch size " << opt_.batch << " must be at least 1");
  MACER_CHECK(opt_.skip >= 1, "loader: skip " << opt_.skip << " must be at least 1");
  MACER_CHECK(opt_.start >= 0 && opt_.start < n,
              "loader: start " << opt_.start << " outside the " << n << " images of " << dataset.name());
  MACER_CHECK(opt_.count >= -1, "loader: count " << opt_.count << " must be -1 (all) or at least 0");
  MACER_CHECK(opt_.shards >= 1 && opt_.shard >= 0 && opt_.shard < opt_.shards,
              "loader: shard " << opt_.shard << " of " << opt_.shards);
  MACER_CHECK(opt_.shards == 1 || (opt_.drop_last && opt_.batch % opt_.shards == 0),
              "loader: a batch of " << opt_.batch << " does not split into " << opt_.shards << " equal shares");
  MACER_CHECK(opt_.prefetch >= 0 && opt_.prefetch <= 64, "loader: prefetch " << opt_.prefetch << " outside 0..64");
  MACER_CHECK(opt_.workers >= 0 && opt_.workers <= 256, "loader: workers " << opt_.workers << " outside 0..256");
  MACER_CHECK(!(opt_.random_resized_crop && opt_.augment_crop),
              "loader: RandomResizedCrop and the padded random crop exclude each other");
  MACER_CHECK(opt_.crop_padding >= 0, "loader: crop padding " << opt_.crop_padding << " must be at least 0");
  if (!opt_.indices.empty()) {
    for (int64_t i : opt_.indices)
      MACER_CHECK(i >= 0 && i < n, "loader: index " << i << " outside the " << n << " images of " << dataset.name());
    selection_ = opt_.indices;
  } else {
    const int64_t available = (n - opt_.start + opt_.skip - 1) / opt_.skip;
    const int64_t take = opt_.count < 0 ? available : opt_.count;
    MACER_CHECK(take <= available, "loader: asked for " << opt_.count << " images from index " << opt_.start
                                                        << " every " << opt_.skip << ", but " << dataset.name()
                                                        << " (" << n << " images) has only " << available);
    selection_.resize(size_t(take));
    for (int64_t j = 0; j < take; ++j) selection_[size_t(j)] = opt_.start + j * opt_.skip;
  }

  aug_.crop = opt_.augment_crop;
  aug_.flip = opt_.augment_flip;
  aug_.padding = opt_.crop_padding;
  workers_ = opt_.workers > 0 ? opt_.workers
                              : dataset.in_memory() ? 1
                                                    : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}

Loader::~Loader() { stop(); }

int64_t Loader::batches_per_epoch() const {
  const int64_t n = size(), b = opt_.batch;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> Loader::epoch_order(int epoch) const {
  std::vector<int64_t> order = selection_;
  if (opt_.shuffle && order.size() > 1) {
    // Fisher-Yates on raw engine output: the permutation depends on (seed, epoch) only.
    std::mt19937_64 rng(mix_seed(opt_.seed ^ kShuffleSalt, uint64_t(epoch), 0));
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[size_t(rng() % (i + 1))]);
  }
  return order;
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Loader::begin_epoch(int epoch) {
  stop();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  queue_.clear();
  error_ = nullptr;
  cancel_ = false;
  next_batch_ = 0;
  started_ = true;
  done_ = batches_per_epoch() == 0;
  if (opt_.prefetch > 0 && !done_) thread_ = std::thread(&Loader::produce, this);
}

void Loader::fill_rows(float* images, int32_t* labels, int64_t* indices, int64_t first, int64_t rows, int64_t row0,
                       int64_t step) const {
  const int c = dataset_.channels(), h = dataset_.height(), w = dataset_.width();
  const int64_t numel = dataset_.image_numel();
  const bool augment = aug_.flip || (aug_.crop && aug_.padding > 0);
  std::vector<float> plain(augment ? size_t(numel) : 0);
  for (int64_t r = row0; r < rows && !cancel_; r += step) {
    const int64_t idx = order_[size_t(first + r)];
    float* dst = images + r * numel;
    if (opt_.random_resized_crop && augment) {
      dataset_.random_resized_crop(idx, mix_seed(opt_.seed ^ kResizedCropSalt, uint64_t(epoch_), uint64_t(idx)),
                                   plain.data());
      augment_image(plain.data(), dst, c, h, w, aug_, opt_.seed, epoch_, idx);
    } else if (opt_.random_resized_crop) {
      dataset_.random_resized_crop(idx, mix_seed(opt_.seed ^ kResizedCropSalt, uint64_t(epoch_), uint64_t(idx)), dst);
    } else if (augment) {
      dataset_.image(idx, plain.data());
      augment_image(plain.data(), dst, c, h, w, aug_, opt_.seed, epoch_, idx);
    } else {
      dataset_.image(idx, dst);
    }
    labels[r] = dataset_.label(idx);
    indices[r] = idx;
  }
}

Batch Loader::make_batch(int64_t b) const {
  const int64_t share = opt_.batch / opt_.shards;  // the whole batch when not sharded
  const int64_t first = b * opt_.batch + opt_.shard * share;
  const int64_t rows = opt_.shards == 1 ? std::min<int64_t>(opt_.batch, size() - first) : share;
  Batch batch;
  batch.images = Tensor::empty({rows, dataset_.channels(), dataset_.height(), dataset_.width()});
  batch.labels = Tensor::empty({rows}, Device::CPU, DType::I32);
  batch.indices.resize(size_t(rows));
  float* images = batch.images.data<float>();
  int32_t* labels = batch.labels.data<int32_t>();
  int64_t* indices = batch.indices.data();
  // Rows are dealt round-robin to the workers; each row's content depends only on its index.
  const int64_t workers = std::min<int64_t>(workers_, rows);
  std::vector<std::thread> helpers;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  for (int64_t t = 1; t < workers; ++t)
    helpers.emplace_back([&, t] {
      try {
        fill_rows(images, labels, indices, first, rows, t, workers);
      } catch (...) {
        errors[size_t(t)] = std::current_exception();
      }
    });
  try {
    fill_rows(images, labels, indices, first, rows, 0, workers);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& th : helpers) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  batch.first_index = rows > 0 ? indices[0] : 0;
  return batch;
}

void Loader::produce() {
  const int64_t batches = batches_per_epoch();
  for (int64_t b = 0; b < batches; ++b) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return cancel_ || int64_t(queue_.size()) < opt_.prefetch; });
      if (cancel_) return;
    }
    Batch batch;
    std::exception_ptr failure;
    try {
      batch = make_batch(b);
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {  // handed over outside the handler: the caller then owns the exception alone
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::move(failure);
      done_ = true;
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cancel_) return;  // a batch cut short by stop() is never delivered
      queue_.push_back(std::move(batch));
    }
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  cv_.notify_all();
}

bool Loader::next(Batch& batch) {
  if (!started_) begin_epoch(0);
  if (opt_.prefetch == 0) {  // synchronous: the same batches, made here
    if (next_batch_ >= batches_per_epoch()) return false;
    try {
      batch = make_batch(next_batch_);
    } catch (...) {
      next_batch_ = batches_per_epoch();  // as the threaded path: the epoch ends at an error
      throw;
    }
    ++next_batch_;
    return true;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (!queue_.empty()) {
    batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    cv_.notify_all();
    return true;
  }
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  return false;
}

}  // namespace macer::data
