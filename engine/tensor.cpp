// Tensor construction, views and explicit device copies; storage comes from engine/memory.
#include "engine/tensor.h"

#include <sstream>

#include "engine/memory.h"
#include "kernels/elementwise.h"
#include "kernels/memory_format.h"

namespace macer {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::F64: return 8;
    case DType::BF16: return 2;
  }
  return 4;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
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

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype, MemoryFormat format) {
  for (int64_t d : shape) MACER_CHECK(d >= 0, "negative dimension in shape " << shape_string(shape));
  MACER_CHECK(format == MemoryFormat::Contiguous ||
                  (shape.size() == 4 && (dtype == DType::F32 || dtype == DType::BF16)),
              "channels-last needs a 4-d float tensor, not " << shape_string(shape) << " " << dtype_name(dtype));
  MACER_CHECK(dtype != DType::BF16 || format == MemoryFormat::ChannelsLast,
              "a bf16 tensor must be channels-last, not " << shape_string(shape));
  Tensor t;
  t.shape_ = shape;
  t.device_ = device;
  t.dtype_ = dtype;
  t.format_ = format;
  t.storage_ = allocate(t.bytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  t.zero_();
  return t;
}

Tensor Tensor::empty_like(const Tensor& t) { return empty(t.shape_, t.device_, t.dtype_, t.format_); }
Tensor Tensor::empty_like(const Tensor& t, DType dtype) { return empty(t.shape_, t.device_, dtype, t.format_); }

Tensor Tensor::zeros_like(const Tensor& t) {
  Tensor z = empty_like(t);
  z.zero_();
  return z;
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
  MACER_CHECK(format_ == MemoryFormat::Contiguous || shape == shape_,
              "cannot view a channels-last tensor as " << shape_string(shape) << " (ops::contiguous first)");
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
  Tensor t = empty(shape_, device, dtype_, format_);
  copy_bytes(t.raw(), device, raw(), device_, bytes());
  return t;
}

Tensor Tensor::to_memory_format(MemoryFormat format) const {
  if (format == format_) return *this;
  MACER_CHECK(device_ == Device::CPU, "memory format conversion on " << device_name(device_) << " is not built");
  if (dtype_ == DType::BF16) return to_float32().to_memory_format(format);
  Tensor t = empty(shape_, device_, dtype_, format);
  if (format == MemoryFormat::ChannelsLast)
    kernels::cpu::to_channels_last(shape_[0], shape_[1], shape_[2] * shape_[3], data(), t.data());
  else
    kernels::cpu::to_contiguous(shape_[0], shape_[1], shape_[2] * shape_[3], data(), t.data());
  return t;
}

Tensor Tensor::to_float32() const {
  if (dtype_ != DType::BF16) return *this;
  MACER_CHECK(device_ == Device::CPU, "bf16 tensors on " << device_name(device_) << " are not built");
  Tensor t = empty(shape_, device_, DType::F32, format_);
  kernels::cpu::bf16_to_float32(numel(), data<uint16_t>(), t.data());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  MACER_CHECK(src.format_ == format_, "copy between memory formats (use to_memory_format)");
  MACER_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_,
              "copy of " << shape_string(src.shape_) << " " << dtype_name(src.dtype_) << " into "
                         << shape_string(shape_) << " " << dtype_name(dtype_));
  copy_bytes(raw(), device_, src.raw(), src.device_, bytes());
}

void Tensor::zero_() { zero_bytes(raw(), device_, bytes()); }

std::vector<float> Tensor::to_vector() const {
  Tensor host = (device_ == Device::CPU ? *this : to(Device::CPU)).to_memory_format(MemoryFormat::Contiguous);
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
