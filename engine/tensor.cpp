// Tensor construction, views and explicit device copies; storage comes from engine/memory.
#include "engine/tensor.h"

#include <sstream>

#include "engine/memory.h"
#include "kernels/elementwise.h"

namespace macer {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::F64: return 8;
  }
  return 4;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::F64: return "F64";
  }
  return "?";
}

std::string shape_string(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ")";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  for (int64_t d : shape) MACER_CHECK(d >= 0, "negative dimension in shape " << shape_string(shape));
  Tensor t;
  t.shape_ = shape;
  t.device_ = device;
  t.dtype_ = dtype;
  t.storage_ = allocate(t.bytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  if (device == Device::CPU)
    kernels::cpu::fill(t.numel(), value, t.data());
  else
#ifdef MACER_HAVE_CUDA
    kernels::cuda::fill(t.numel(), value, t.data());
#else
    require_device(device);
#endif
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  MACER_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
              values.size() << " values do not fill shape " << shape_string(shape));
  Tensor t = empty(shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape) {
  MACER_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
              values.size() << " values do not fill shape " << shape_string(shape));
  Tensor t = empty(shape, Device::CPU, DType::I32);
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  MACER_CHECK(j >= 0 && j < n, "dimension " << i << " out of range for shape " << shape_string(shape_));
  return shape_[j];
}

void Tensor::check_dtype(DType t) const {
  MACER_CHECK(defined(), "use of an undefined tensor");
  MACER_CHECK(t == dtype_, "tensor holds " << dtype_name(dtype_) << ", accessed as " << dtype_name(t));
}

Tensor Tensor::view(const Shape& shape) const {
  MACER_CHECK(shape_numel(shape) == numel(),
              "cannot view " << shape_string(shape_) << " as " << shape_string(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::narrow_rows(int64_t start, int64_t count) const {
  MACER_CHECK(ndim() >= 1 && start >= 0 && count >= 0 && start + count <= shape_[0],
              "rows [" << start << ", " << start + count << ") out of " << shape_string(shape_));
  Tensor t = *this;
  t.shape_[0] = count;
  t.offset_ += start * (shape_[0] == 0 ? 0 : numel() / shape_[0]);
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, device, dtype_);
  copy_bytes(t.raw(), device, raw(), device_, bytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  MACER_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_,
              "copy of " << shape_string(src.shape_) << " " << dtype_name(src.dtype_) << " into "
                         << shape_string(shape_) << " " << dtype_name(dtype_));
  copy_bytes(raw(), device_, src.raw(), src.device_, bytes());
}

void Tensor::zero_() { zero_bytes(raw(), device_, bytes()); }

std::vector<float> Tensor::to_vector() const {
  Tensor host = device_ == Device::CPU ? *this : to(Device::CPU);
  const float* p = host.data();
  return std::vector<float>(p, p + numel());
}

std::vector<int32_t> Tensor::to_ints() const {
  Tensor host = device_ == Device::CPU ? *this : to(Device::CPU);
  const int32_t* p = host.data<int32_t>();
  return std::vector<int32_t>(p, p + numel());
}

float Tensor::item() const {
  MACER_CHECK(numel() == 1, "item() of a tensor of shape " << shape_string(shape_));
  return to_vector()[0];
}

}  // namespace macer
