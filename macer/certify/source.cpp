// macer/certify/source.h: checkpoint metadata (model, data set, shape, sigma, normalization and
// the stored training config) resolved against the command line's overrides.
#include "macer/certify/source.h"

#include <sstream>

#include "layers/folded.h"
#include "layers/registry.h"
#include "layers/state.h"
#include "macer/checkpoint.h"
#include "macer/config.h"

namespace macer {

CertifySource open_certify_source(const CertifySourceOptions& o) {
  MACER_CHECK(!o.checkpoint.empty(), "--checkpoint is required (or --summarize FILE.tsv ...)");
  CheckpointInfo info;
  TrainConfig stored;  // the training config stored in the checkpoint: default data settings
  // With --model the weights may come from elsewhere; a converted model still carries this
  // engine's metadata (data set, sigma, shape), which fills what the flags leave out.
  const bool have_info = o.model.empty() ? (info = read_checkpoint_info(o.checkpoint), true)
                                         : read_checkpoint_info_if_any(o.checkpoint, &info);
  if (have_info && !info.config.empty()) stored = parse_train_config(info.config, o.checkpoint + " (stored config)");
  CertifySource src;
  src.dataset = !o.dataset.empty() ? o.dataset : have_info ? info.dataset : "";
  MACER_CHECK(!src.dataset.empty(), "--dataset is required: " << o.checkpoint
                                        << " does not name its data set (pass --dataset cifar10|mnist|fashion-mnist|"
                                           "svhn|imagefolder and --data-dir)");
  src.data_dir = !o.data_dir.empty() ? o.data_dir : have_info && src.dataset == stored.data.dataset ? stored.data.dir : "";
  src.sigma = o.sigma >= 0 ? o.sigma : have_info ? info.sigma : -1;
  MACER_CHECK(src.sigma > 0, "--sigma is required: " << o.checkpoint
                                 << " records no noise level (pass --sigma, the sigma the model was trained with)");
  if (have_info && !info.config.empty()) src.train_beta = stored.objective.beta;

  data::DatasetOptions dopt;
  // 224 is the flag's default: the checkpoint's own size wins over it when there is one.
  dopt.image_size = int(o.image_size != 224 ? o.image_size
                        : !info.config.empty() ? stored.data.image_size
                        : have_info && info.height > 0 ? info.height : o.image_size);
  dopt.synthetic_size = stored.data.synthetic_size;
  dopt.seed = uint64_t(stored.run.seed);
  if (have_info) {
    dopt.synthetic_channels = info.channels, dopt.synthetic_height = info.height;
    dopt.synthetic_width = info.width, dopt.synthetic_classes = info.classes;
  }
  src.set = data::open_dataset(src.dataset, src.data_dir, o.split, dopt);

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
