// The batch loader: selects images (start, count, skip), shuffles per epoch from the seed,
// augments, and batches them into CPU tensors, one background thread preparing ahead.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "engine/tensor.h"

namespace macer::data {

struct LoaderOptions {
  int batch = 64;
  bool shuffle = false;       // a fresh permutation every epoch, from (seed, epoch) only
  bool augment_crop = false;  // random crop from the image padded by crop_padding
  bool augment_flip = false;  // random horizontal flip
  // torchvision's RandomResizedCrop (Dataset::random_resized_crop, image folders) instead of the
  // evaluation transform, its box keyed by (seed, epoch, index); flip may follow, crop may not.
  bool random_resized_crop = false;
  bool drop_last = false;     // drop a last batch smaller than `batch`
  uint64_t seed = 0;
  // Selection: dataset indices start, start+skip, start+2*skip, ...: `count` of them (-1: all
  // that exist). Asking for more than exist is an error.
  int64_t start = 0;
  int64_t count = -1;
  int64_t skip = 1;
  // An explicit selection (dataset indices, each in range), used instead of start/count/skip
  // when not empty: data.train_count's sample (data/sample.h).
  std::vector<int64_t> indices;
  int crop_padding = 4;
  // Data parallelism: the rows [shard * batch / shards, (shard + 1) * batch / shards) of every
  // global batch of `batch` rows, so that `shards` loaders with the same seed share each batch
  // out disjointly. Needs drop_last and shards dividing batch.
  int shard = 0, shards = 1;
  int prefetch = 2;  // batches prepared ahead by the background thread; 0: none (synchronous)
  int workers = 0;   // threads decoding one batch; 0: 1 for in-memory sets, up to 8 otherwise
};

struct Batch {
  Tensor images;             // (B, C, H, W) F32 on the CPU, values in [0, 1] before augmentation
  Tensor labels;             // (B) I32 on the CPU
  int64_t first_index = 0;   // dataset index of row 0
  std::vector<int64_t> indices;  // (B) dataset index of every row
};

class Loader {
 public:
  Loader(const Dataset& dataset, const LoaderOptions& options);
  ~Loader();  // stops and joins the thread, also mid-epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Images selected, and batches in one epoch (with drop_last, full batches only).
  int64_t size() const { return int64_t(selection_.size()); }
  int64_t batches_per_epoch() const;
  // Starts epoch `epoch` (abandoning any unfinished one). next() before any call starts epoch 0.
  void begin_epoch(int epoch);
  // The epoch's next batch; false at its end. An error in the thread is rethrown here, after
  // the batches prepared before it.
  bool next(Batch& batch);
  // Dataset indices in the order epoch `epoch` visits them.
  std::vector<int64_t> epoch_order(int epoch) const;

 private:
  Batch make_batch(int64_t b) const;  // batch b of the current epoch
  // Rows row0, row0+step, ... of a batch whose row 0 is order_[first].
  void fill_rows(float* images, int32_t* labels, int64_t* indices, int64_t first, int64_t rows, int64_t row0,
                 int64_t step) const;
  void produce();                     // the background thread's loop
  void stop();                        // ask the thread to stop, join it

  const Dataset& dataset_;
  LoaderOptions opt_;
  AugmentOptions aug_;
  int workers_ = 1;
  std::vector<int64_t> selection_;
  int epoch_ = 0;
  bool started_ = false;
  std::vector<int64_t> order_;  // this epoch's order; fixed while the thread runs
  int64_t next_batch_ = 0;      // synchronous mode: the batch next() makes

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool done_ = false;
  std::atomic<bool> cancel_{false};  // also read by fill_rows, to stop mid-batch
};

}  // namespace macer::data
