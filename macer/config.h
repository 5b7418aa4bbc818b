// The training configuration: a TOML file (toml++) in sections [data] [model] [objective]
// [optim] [run] [certify], overridable by --set section.key=value, validated against one schema.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace macer {

struct TrainConfig {
  struct Data {
    std::string dataset = "cifar10";  // cifar10 | mnist | fashion-mnist | svhn | imagefolder | synthetic
    std::string dir;
    // N training images (-1: all): a class-balanced sample drawn with run.seed (data/sample.h).
    int64_t train_count = -1;
    bool augment_crop = false;  // random crop from the image padded by 4
    bool augment_flip = false;  // random horizontal flip
    int64_t image_size = 224;   // imagefolder only
    std::string class_order = "auto";  // imagefolder only: auto | text | numeric (data/image_folder.h)
    // Training images: auto (imagefolder: random_resized_crop; others: the images as stored),
    // random_resized_crop (torchvision's RandomResizedCrop(image_size)), center_crop (imagefolder:
    // the evaluation transform, Resize + CenterCrop).
    std::string train_transform = "auto";
    bool jpeg_scaled_crops = true;  // RandomResizedCrop: JPEGs decoded at 1/2..1/8 scale when the crop allows
    int64_t synthetic_size = 512;   // synthetic only: images per split
    int64_t synthetic_classes = 10;  // synthetic only
  } data;
  struct Model {
    std::string name = "resnet110";
    // Per-channel input normalization applied inside the model, after the noise (Cohen's
    // NormalizeLayer): none (MACER's choice) | cifar10 | imagenet.
    std::string normalize = "none";
  } model;
  struct Objective {
    std::string name = "macer";  // macer | gaussian | consistency | smoothmix
    double sigma = 0.25;
    int64_t k = 16;
    double lambda = 12.0;
    std::string lambda_schedule = "constant";  // constant | deferred
    int64_t lambda_warmup_epochs = 0;          // deferred: lambda = 0 for these epochs
    double beta = 16.0;
    double gamma = 8.0;
    double eta = 0.5;  // consistency: weight of H(pbar); smoothmix: weight of the mixup KL
  } objective;
  // The attack run before each training step (SPEC.md, "Training methods beyond MACER").
  struct Attack {
    std::string name = "none";  // none | pgd (SmoothAdv) | smoothmix (SmoothMix's adversary)
    double eps = 0.5;           // pgd: L2 radius in [0,1] pixel units
    int64_t steps = 2;          // T
    double alpha = 0.5;         // smoothmix: step size
    int64_t mix_step = 0;       // smoothmix: 0 (clean point x) or 1 (the one-step point)
    int64_t warmup_epochs = 0;  // W: pgd eps_e = min(eps, (e+1) eps / W); smoothmix w_e = min(1, (e+1) / W)
  } attack;
  struct Optim {
    int64_t epochs = 440;
    int64_t batch = 64;
    double lr = 0.01;
    std::vector<int64_t> milestones = {200, 400};
    double lr_factor = 0.1;
    double momentum = 0.9;
    double weight_decay = 5e-4;
    bool nesterov = false;
  } optim;
  struct Run {
    int64_t seed = 0;
    std::string device = "auto";  // cpu | cuda | auto
    // fp32 | bf16: convolutions and linears with bf16 operands and fp32 accumulation, everything
    // else fp32 (engine/precision.h); recorded in checkpoints, a resume keeps it
    std::string precision = "fp32";
    std::string checkpoint_dir = "runs/default";
    int64_t checkpoint_every = 10;  // epochs; the last epoch is always saved
    int64_t keep_every = 0;         // epochs: also keep <checkpoint_dir>/epoch_<N>.safetensors (0: never)
    int64_t test_every = 1;         // epochs between noisy test loss/accuracy lines (0: never), as Cohen's train.py
    std::string log_file;           // default: <checkpoint_dir>/train.jsonl
    int64_t print_every = 50;       // steps between plain progress lines (not on a terminal)
  } run;
  struct Certify {
    int64_t every = 0;    // epochs between certifications during training (0: never)
    int64_t start = 0;    // first test image
    int64_t count = 100;  // images
    int64_t skip = 1;
    int64_t n0 = 100;
    int64_t n = 1000;
    double alpha = 0.001;
    int64_t batch = 1000;
  } certify;
  // Where each given key's value came from ("FILE:LINE" or "--set K=V"), and the config's own name
  // for keys at their defaults: for refusals found after parsing (key_source).
  std::map<std::string, std::string> sources;
  std::string origin;
};

// "SOURCE: key 'K'" for a message about K found after parsing (the trainer's data checks).
std::string key_source(const TrainConfig& c, const std::string& key);

// Reads `path`, applies `overrides` ("section.key=value", value in TOML syntax or a bare
// string), and validates. Unknown keys, wrong types and out-of-range values throw
// macer::Error naming the file, the key and its line; so do settings that do nothing or
// contradict each other (a key given that the rest makes ineffective, nesterov without
// momentum, a deferred schedule without warm-up, sigma 0 with k > 1, ...).
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from TOML text (`origin` names it in errors).
TrainConfig parse_train_config(const std::string& text, const std::string& origin,
                               const std::vector<std::string>& overrides = {});
// A config stored in a checkpoint: validated key by key, without the combination checks (older
// versions stored every key, in effect or not).
TrainConfig parse_stored_train_config(const std::string& text, const std::string& origin);
// The resolved configuration as TOML text: printed at the start, stored in checkpoints. Keys
// without effect under the rest (gaussian's lambda, [certify] keys at every = 0, ...) are left out.
std::string to_toml(const TrainConfig& c);

// Levenshtein distance of a and b (insertions, deletions, substitutions each 1): the "did you
// mean" of config keys and of the programs' flags (bin/cli.h).
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace macer
