// What macer_certify certifies: a checkpoint's model and the data set it names (or weights made
// elsewhere with --model, and the data set named on the command line), checked against each other.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"
#include "layers/module.h"

namespace macer {

struct CertifySourceOptions {
  std::string checkpoint;
  std::string model;      // registry name for weights made elsewhere; empty: read the checkpoint's metadata
  std::string normalize;  // with `model` only: none | cifar10 | imagenet (empty: none)
  std::string dataset, data_dir, split = "test";  // empty dataset / data_dir: the checkpoint's
  double sigma = -1;                                // < 0: the checkpoint's
  bool predict = false;                             // PREDICT: sigma 0 allowed (the plain classifier)
  int64_t image_size = 224;                         // imagefolder; 224: the checkpoint's when it has one
  std::string class_order;                          // imagefolder: auto|text|numeric; empty: the checkpoint's
  Device device = Device::CPU;                      // where the model is put
  bool fold_batchnorm = true;                       // the inference form (layers/folded.h) where it has one
  bool other_data = false;  // certify data other than the checkpoint's with a warning instead of an error
};

struct CertifySource {
  std::unique_ptr<data::Dataset> set;
  std::unique_ptr<layers::Module> model;  // weights loaded, in eval mode, on options.device
  bool folded = false;                    // model is the batch-norm-folded inference form
  std::string dataset, data_dir;          // as resolved (data_dir: the folder read, data::data_folder)
  std::string data_fingerprint;           // data::content_fingerprint of `set` ("" for image folders)
  double sigma = 0;
  double train_beta = -1;                 // the training objective's beta; -1 when unknown
  double train_sigma = -1;                // the sigma the checkpoint records (0: trained without noise); -1 when none
  std::string model_name;                 // the registry name that was built (--model or the checkpoint's)
  std::string normalize;                  // "none" or "mean=..;std=.." as applied to the input
};

// Opens the data set and builds and loads the model; throws macer::Error on anything that does
// not fit (no data set or sigma given or recorded, another input shape or class count, ...).
// Data identity: refuses (with other_data: warns on stderr, naming both) when the files are
// official data recognised by content (data/fingerprint.h) other than the named data set, or
// when the checkpoint records another data set name, other class names, or training files
// recognised as another data set; warns when --split train reads other training files than
// the checkpoint's fingerprint.
CertifySource open_certify_source(const CertifySourceOptions& options);

}  // namespace macer
