// macer/certify/source.h: checkpoint metadata (model, data set, shape, sigma, normalization and
// the stored training config) resolved against the command line's overrides.
#include "macer/certify/source.h"

#include <cmath>
#include <cstdio>

#include "data/dataset.h"
#include "data/fingerprint.h"
#include <sstream>

#include "layers/folded.h"
#include "layers/registry.h"
#include "layers/state.h"
#include "macer/checkpoint.h"
#include "macer/config.h"
#include "macer/model_name.h"

namespace macer {

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return "[" + out + "]";
}

// The data set a recognised fingerprint names ("fashion-mnist test" -> "fashion-mnist").
std::string recognised_name(const std::string& fingerprint) {
  std::string r = data::recognise_fingerprint(fingerprint);
  return r.substr(0, r.find(' '));
}

// What certification reads against what the model was trained on (`info`; have_info false for
// --model weights, which record nothing): every difference found, one sentence each.
std::vector<std::string> data_differences(const CertifySourceOptions& o, const CertifySource& src,
                                          const CheckpointInfo& info, bool have_info) {
  std::vector<std::string> out;
  const std::string where = src.data_dir.empty() ? src.dataset : src.data_dir;
  const std::string read_as = recognised_name(src.data_fingerprint);
  if (!read_as.empty() && read_as != src.dataset)
    out.push_back(where + " holds " + data::recognise_fingerprint(src.data_fingerprint) +
                  " (recognised by the digest of its content), not " + src.dataset);
  if (!have_info) return out;
  if (!info.dataset.empty() && info.dataset != src.dataset)
    out.push_back(o.checkpoint + " was trained on " + info.dataset + ", this run reads " + src.dataset);
  std::vector<std::string> names = src.set->class_names();
  if (!info.class_names.empty() && !names.empty() && names != info.class_names)
    out.push_back(o.checkpoint + " has classes " + joined(info.class_names) + ", " + where + " has " + joined(names));
  const std::string trained_on = recognised_name(info.data_fingerprint);
  if (!trained_on.empty() && trained_on != src.dataset && trained_on != info.dataset)
    out.push_back(o.checkpoint + " was trained on the files of " + trained_on +
                  " (recognised by their digest), this run reads " + src.dataset);
  return out;
}

}  // namespace

CertifySource open_certify_source(const CertifySourceOptions& o) {
  MACER_CHECK(!o.checkpoint.empty(), "--checkpoint is required (or --summarize FILE.tsv ...)");
  if (!o.model.empty()) check_model_name(o.model, "--model");  // before any file is read
  CheckpointInfo info;
  TrainConfig stored;  // the training config stored in the checkpoint: default data settings
  // With --model the weights may come from elsewhere; a converted model still carries this
  // engine's metadata (data set, sigma, shape), which fills what the flags leave out.
  const bool have_info = o.model.empty() ? (info = read_checkpoint_info(o.checkpoint), true)
                                         : read_checkpoint_info_if_any(o.checkpoint, &info);
  if (have_info && !info.config.empty()) stored = parse_stored_train_config(info.config, o.checkpoint + " (stored config)");
  CertifySource src;
  src.dataset = data::canonical_dataset(!o.dataset.empty() ? o.dataset : have_info ? info.dataset : "");
  MACER_CHECK(!src.dataset.empty(), "--dataset is required: " << o.checkpoint
                                        << " does not name its data set (pass --dataset cifar10|mnist|fashion-mnist|"
                                           "svhn|imagefolder and --data-dir)");
  src.data_dir = !o.data_dir.empty() ? o.data_dir : have_info && src.dataset == stored.data.dataset ? stored.data.dir : "";
  const bool recorded = have_info && info.sigma_recorded;
  if (recorded) src.train_sigma = info.sigma;
  src.sigma = o.sigma >= 0 ? o.sigma : recorded ? info.sigma : -1;
  MACER_CHECK(src.sigma >= 0, "--sigma is required: " << o.checkpoint
                                  << " records no sigma: pass --sigma S, the noise level the model was trained with");
  // Sigma 0: no noise, so every vote is the plain classifier's and every radius sigma Phi^-1(pA) is 0.
  MACER_CHECK(src.sigma > 0 || o.sigma >= 0,
              o.checkpoint << " was trained at sigma 0, without noise: it is a plain classifier, and certified at "
                              "sigma 0 every radius would be 0; pass --sigma S to certify its smoothed classifier at "
                              "noise S (a model trained without noise is usually poor under noise), or --predict "
                              "--sigma 0 for its accuracy without noise");
  MACER_CHECK(src.sigma > 0 || o.predict,
              "--sigma 0 certifies radius 0 for every image (without noise there is no smoothing); give --sigma > 0, "
              "or --predict --sigma 0 for the plain classifier's accuracy");
  if (have_info && !info.config.empty()) src.train_beta = stored.objective.beta;
  else if (have_info && info.beta > 0) src.train_beta = info.beta;  // a converted MACER checkpoint
  if (src.train_sigma > 0 && std::fabs(src.sigma - src.train_sigma) > 1e-9 * src.train_sigma)
    std::fprintf(stderr, "warning: certifying at sigma %g, but %s was trained at sigma %g (the radii are for the "
                         "noise of this run; both are recorded)\n",
                 src.sigma, o.checkpoint.c_str(), src.train_sigma);

  data::DatasetOptions dopt;
  // 224 is the flag's default: the checkpoint's own size wins over it when there is one.
  dopt.image_size = int(o.image_size != 224 ? o.image_size
                        : !info.config.empty() ? stored.data.image_size
                        : have_info && info.height > 0 ? info.height : o.image_size);
  dopt.class_order = !o.class_order.empty() ? o.class_order : stored.data.class_order;
  dopt.synthetic_size = stored.data.synthetic_size;
  dopt.seed = uint64_t(stored.run.seed);
  if (have_info) {
    dopt.synthetic_channels = info.channels, dopt.synthetic_height = info.height;
    dopt.synthetic_width = info.width, dopt.synthetic_classes = info.classes;
  }
  dopt.dir_option = "--data-dir DIR";
  src.set = data::open_dataset(src.dataset, src.data_dir, o.split, dopt);
  src.data_dir = data::data_folder(src.dataset, src.data_dir);  // the folder read (recorded), default included
  src.data_fingerprint = data::content_fingerprint(*src.set);
  for (const std::string& d : data_differences(o, src, info, have_info)) {
    MACER_CHECK(o.other_data, d << ": certificates would be about other data than the model's; give the data "
                                   "it was trained on, or --other-data to certify anyway");
    std::fprintf(stderr, "warning: %s (--other-data: certifying anyway)\n", d.c_str());
  }
  if (have_info && o.split == "train" && !info.data_fingerprint.empty() && !src.data_fingerprint.empty() &&
      info.data_fingerprint != src.data_fingerprint)
    std::fprintf(stderr, "warning: the training split read (%s) is not the one %s was trained on (%s)\n",
                 src.data_fingerprint.c_str(), o.checkpoint.c_str(), info.data_fingerprint.c_str());

  layers::ModelOptions mopt;
  mopt.channels = src.set->channels(), mopt.height = src.set->height(), mopt.width = src.set->width();
  mopt.classes = src.set->classes();
  if (have_info && o.model.empty()) {
    MACER_CHECK(info.channels == mopt.channels && info.height == mopt.height && info.width == mopt.width &&
                    info.classes == mopt.classes,
                o.checkpoint << " was trained on " << info.channels << "x" << info.height << "x" << info.width
                             << " images with " << info.classes << " classes; " << src.dataset << " has "
                             << mopt.channels << "x" << mopt.height << "x" << mopt.width << " with " << mopt.classes);
    MACER_CHECK(o.normalize.empty(),
                "--normalize is for --model weights; " << o.checkpoint << " records its own normalization");
    mopt.normalize = info.normalize;
    src.model_name = info.model;
    src.model = layers::make_model(info.model, mopt);
    load_checkpoint(o.checkpoint, *src.model, nullptr);
  } else {
    // --normalize, else a converted model's recorded normalization, else none.
    mopt.normalize = !o.normalize.empty() || !have_info ? layers::normalization_preset(o.normalize.empty() ? "none" : o.normalize)
                                                        : info.normalize;
    src.model_name = o.model;
    src.model = layers::make_model(o.model, mopt);
    layers::load_module(o.checkpoint, *src.model);
  }
  src.normalize = "none";
  if (mopt.normalize.enabled()) {
    std::ostringstream os;
    os.precision(9);
    os << "mean=";
    for (size_t i = 0; i < mopt.normalize.mean.size(); ++i) os << (i ? "," : "") << mopt.normalize.mean[i];
    os << ";std=";
    for (size_t i = 0; i < mopt.normalize.std.size(); ++i) os << (i ? "," : "") << mopt.normalize.std[i];
    src.normalize = os.str();
  }
  src.model->eval();
  std::unique_ptr<layers::Module> folded;
  if (o.fold_batchnorm) folded = layers::fold_batchnorm(*src.model, mopt.normalize, o.device);
  if (folded) {
    src.model = std::move(folded);
    src.folded = true;
  } else {
    src.model->to(o.device);
  }
  return src;
}

}  // namespace macer
