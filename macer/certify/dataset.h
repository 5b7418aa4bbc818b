// Certification of a range of a data set's images with a model: the loop shared by
// bin/macer_certify and the in-training certification (rows, progress, TSV as it goes).
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "layers/module.h"
#include "macer/certify/report.h"
#include "macer/config.h"
#include "macer/certify/smoothing.h"

namespace macer {

struct ImageRange {
  int64_t start = 0;
  int64_t count = -1;  // -1: to the end
  int64_t skip = 1;
};

// The images start, start+skip, ... (count of them, or to the end) of a data set of `size`;
// throws when that selects none.
std::vector<int64_t> select_images(int64_t size, const ImageRange& range);

// Runs CERTIFY (or PREDICT when `predict`) on `indices` of `dataset`, the model in eval mode
// without gradients; writes each row to `writer` when given and shows progress when `label` is
// not empty. Returns the rows. In a job of several ranks (macer/distributed.h) every rank calls
// it with the same indices: the ranks take turns, rank 0 gathers, writes and returns every row
// in index order, the others return nothing. across_ranks = false: this rank alone does all.
std::vector<CertifyRow> certify_images(layers::Module& model, const data::Dataset& dataset, Device device,
                                       const CertifyOptions& opt, const std::vector<int64_t>& indices, bool predict,
                                       TsvWriter* writer, const std::string& label, bool across_ranks = true);

// The [certify] section of a training config on `test_set` (opened when training starts), with
// the training seed in the in-training certification noise stream, the model in its inference
// form (batch norms folded, layers/folded.h): a JSON summary for the log, labelled "epoch N"
// (`epoch`: the 1-based epoch just trained).
std::string certify_during_training(const TrainConfig& config, layers::Module& model, const data::Dataset& test_set,
                                    Device device, int64_t epoch);

}  // namespace macer
