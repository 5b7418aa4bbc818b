// Tensor: a shape, an element type (float32 for values, bfloat16 for bf16 activations; int32/int64/
// float64 for labels, indices and counters), a device, a memory format and dense shared storage.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "kernels/check.h"

namespace macer {

using Shape = std::vector<int64_t>;
// BF16: bfloat16 bits (uint16_t, kernels/precision.h), only for the CPU's channels-last
// activations between layers in bf16 precision (engine/precision.h bf16_activations).
enum class DType { F32, I32, I64, F64, BF16 };

// The order of a 4-d float tensor's elements in memory (PyTorch's names): Contiguous is
// (N,C,H,W), the default and the only format of every other rank and type (BF16 excepted: only
// ChannelsLast); ChannelsLast is
// (N,H,W,C), the layout oneDNN's convolutions work in, kept between layers on the CPU
// (engine/precision.h). shape() is the logical (N,C,H,W) in both.
enum class MemoryFormat { Contiguous, ChannelsLast };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
std::string shape_string(const Shape& s);
int64_t shape_numel(const Shape& s);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::BF16; }

class Tensor {
 public:
  Tensor() = default;
  // ChannelsLast needs a 4-d F32 or BF16 shape, BF16 needs ChannelsLast (throws otherwise).
  static Tensor empty(const Shape& shape, Device device = Device::CPU, DType dtype = DType::F32,
                      MemoryFormat format = MemoryFormat::Contiguous);
  static Tensor zeros(const Shape& shape, Device device = Device::CPU, DType dtype = DType::F32);
  // Of t's shape, device, type and memory format.
  static Tensor empty_like(const Tensor& t);
  // Of t's shape, device and memory format in `dtype` (a bf16 activation's float32 gradient).
  static Tensor empty_like(const Tensor& t, DType dtype);
  static Tensor zeros_like(const Tensor& t);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  // A CPU tensor holding `values` (size must match the shape).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  MemoryFormat memory_format() const { return format_; }
  bool channels_last() const { return format_ == MemoryFormat::ChannelsLast; }

  template <typename T = float> T* data() {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<T*>(raw());
  }
  template <typename T = float> const T* data() const {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<const T*>(raw());
  }

  // The same storage under another shape of equal size (Contiguous tensors only).
  Tensor view(const Shape& shape) const;
  // Rows [start, start+count) along the first dimension, sharing storage.
  Tensor narrow_rows(int64_t start, int64_t count) const;
  // An explicit copy to `device` (a new tensor even on the same device).
  Tensor to(Device device) const;
  Tensor clone() const { return to(device_); }
  // A CPU copy in `format` (the tensor itself when it is already in it); a BF16 tensor comes back
  // float32 in Contiguous (bf16 exists only channels-last).
  Tensor to_memory_format(MemoryFormat format) const;
  // A float32 copy of a BF16 tensor in its memory format (the tensor itself when float32).
  Tensor to_float32() const;
  // The storage of any type, for kernels that take several (conv2d's bf16 or float32 operands).
  void* data_ptr() { return raw(); }
  const void* data_ptr() const { return raw(); }
  void copy_from(const Tensor& src);  // same shape, dtype and memory format, any devices
  void zero_();
  // Host copies of the values in logical (N,C,H,W) order whatever the memory format, for tests
  // and logging.
  std::vector<float> to_vector() const;
  std::vector<int32_t> to_ints() const;
  float item() const;  // the single value of a one-element float tensor

 private:
  void* raw() const {
    return static_cast<char*>(storage_.get()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
  }
  void check_dtype(DType t) const;

  std::shared_ptr<void> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  Device device_ = Device::CPU;
  DType dtype_ = DType::F32;
  MemoryFormat format_ = MemoryFormat::Contiguous;
};

}  // namespace macer
