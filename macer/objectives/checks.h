// Argument checks shared by the objective ops of macer/objectives/ (logits, labels, per-image
// tensors): one clear macer::Error naming the op and what is wrong.
#pragma once
#include "engine/autograd.h"

namespace macer::objectives_detail {

// Logits (B*k, C) with C >= 1 split into `copies` >= 1 copies of labels.numel() images; labels
// int32 on the logits' device, each in [0, C) (checked on the host only: on a GPU it would sync).
void check_logits_labels(const char* op, const Tensor& logits, const Tensor& labels, int copies);

// A float32 tensor of `count` elements on `device` (per-image inputs such as SmoothMix's lam).
void check_per_image(const char* op, const char* what, const Tensor& t, int64_t count, Device device);

}  // namespace macer::objectives_detail
