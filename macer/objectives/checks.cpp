// Argument checks shared by the objective ops (macer/objectives/checks.h).
#include "macer/objectives/checks.h"

#include <limits>

namespace macer::objectives_detail {

void check_logits_labels(const char* op, const Tensor& logits, const Tensor& labels, int copies) {
  MACER_CHECK(logits.defined(), op << ": undefined logits");
  const Shape& ls = logits.shape();
  MACER_CHECK(ls.size() == 2 && ls[1] >= 1 && copies >= 1 && ls[0] % copies == 0 && labels.defined() &&
                  labels.numel() == ls[0] / copies,
              op << ": logits " << shape_string(ls) << " do not split into " << copies << " copies of "
                 << (labels.defined() ? labels.numel() : 0) << " labels");
  MACER_CHECK(ls[0] * ls[1] <= std::numeric_limits<int32_t>::max(),
              op << ": logits " << shape_string(ls) << " too large");
  MACER_CHECK(logits.dtype() == DType::F32, op << ": logits must be float32, got " << dtype_name(logits.dtype()));
  MACER_CHECK(labels.dtype() == DType::I32 && labels.device() == logits.device(),
              op << ": labels must be int32 on the logits' device (" << device_name(logits.device()) << "), got "
                 << dtype_name(labels.dtype()) << " on " << device_name(labels.device()));
  // Label range is checked where it costs nothing (host memory); on a GPU it would be a sync.
  if (labels.device() == Device::CPU) {
    const int32_t* y = labels.data<int32_t>();
    for (int64_t b = 0; b < labels.numel(); ++b)
      MACER_CHECK(y[b] >= 0 && y[b] < ls[1],
                  op << ": label " << y[b] << " at " << b << " outside [0, " << ls[1] << ")");
  }
}

void check_per_image(const char* op, const char* what, const Tensor& t, int64_t count, Device device) {
  MACER_CHECK(
      t.defined() && t.dtype() == DType::F32 && t.numel() == count && t.device() == device,
      op << ": " << what << " must be float32 with " << count << " elements on " << device_name(device) << ", got "
         << (t.defined() ? shape_string(t.shape()) + " " + dtype_name(t.dtype()) + " on " + device_name(t.device())
                         : std::string("nothing")));
}

}  // namespace macer::objectives_detail
