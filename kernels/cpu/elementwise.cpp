// CPU elementwise ops (kernels/elementwise.h): plain loops, split over the cores in contiguous
// blocks (kernels/cpu/parallel.h); every element is computed alone, so threads change no bit.
#include "kernels/elementwise.h"

#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"
#include "kernels/precision.h"

namespace macer::kernels::cpu {

namespace {
// relu and add_relu over [lo, hi): the float32 loops, and the bf16 ones compiled for AVX-512 too
// (kernels/cpu/isa.h; the conversions vectorize there).
template <class T>
inline void relu_span(const T* x, T* y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const float v = load(x, i);
    store(y, i, v > 0.0f ? v : 0.0f);
  }
}
template <class T>
inline void add_relu_span(const T* a, const T* b, T* y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const float v = load(a, i) + load(b, i);
    store(y, i, v > 0.0f ? v : 0.0f);
  }
}
MACER_CPU_CLONES void relu_span_bf16(const uint16_t* x, uint16_t* y, int64_t lo, int64_t hi) {
  relu_span(x, y, lo, hi);
}
MACER_CPU_CLONES void add_relu_span_bf16(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t lo, int64_t hi) {
  add_relu_span(a, b, y, lo, hi);
}

template <class T>
inline void relu_backward_span(const T* y, const float* dy, float* dx, bool overwrite, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const float g = dy[i];  // loaded unconditionally: the loop becomes a vector select
    const float d = load(y, i) > 0.0f ? g : 0.0f;
    dx[i] = overwrite ? d : dx[i] + d;
  }
}
template <class T>
inline void add_relu_backward_span(const T* y, const float* dy, float* da, float* db, bool a_overwrite,
                                   bool b_overwrite, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const float d = dy[i];
    const float g = load(y, i) > 0.0f ? d : 0.0f;
    if (da) da[i] = a_overwrite ? g : da[i] + g;
    if (db) db[i] = b_overwrite ? g : db[i] + g;
  }
}
MACER_CPU_CLONES void relu_backward_span_bf16(const uint16_t* y, const float* dy, float* dx, bool overwrite,
                                              int64_t lo, int64_t hi) {
  relu_backward_span(y, dy, dx, overwrite, lo, hi);
}
MACER_CPU_CLONES void add_relu_backward_span_bf16(const uint16_t* y, const float* dy, float* da, float* db,
                                                  bool a_overwrite, bool b_overwrite, int64_t lo, int64_t hi) {
  add_relu_backward_span(y, dy, da, db, a_overwrite, b_overwrite, lo, hi);
}
}  // namespace

void relu_forward(int64_t n, const float* x, float* y) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) { relu_span(x, y, lo, hi); });
}
void relu_forward(int64_t n, const uint16_t* x, uint16_t* y) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) { relu_span_bf16(x, y, lo, hi); });
}
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, bool overwrite) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) { relu_backward_span(y, dy, dx, overwrite, lo, hi); });
}
void relu_backward(int64_t n, const uint16_t* y, const float* dy, float* dx, bool overwrite) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) { relu_backward_span_bf16(y, dy, dx, overwrite, lo, hi); });
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) { relu_backward(n, y, dy, dx, false); }

void add_forward(int64_t n, const float* a, const float* b, float* y) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
  });
}

void accumulate(int64_t n, const float* src, float* dst) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] += src[i];
  });
}

void fill(int64_t n, float value, float* dst) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = value;
  });
}

void scale(int64_t n, float alpha, float* dst) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] *= alpha;
  });
}

void add_relu_forward(int64_t n, const float* a, const float* b, float* y) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) { add_relu_span(a, b, y, lo, hi); });
}
void add_relu_forward(int64_t n, const uint16_t* a, const uint16_t* b, uint16_t* y) {
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) { add_relu_span_bf16(a, b, y, lo, hi); });
}
void add_relu_backward(int64_t n, const float* y, const float* dy, float* da, float* db, bool a_overwrite,
                       bool b_overwrite) {
  parallel_for(n, 2, [=](int64_t lo, int64_t hi) {
    add_relu_backward_span(y, dy, da, db, a_overwrite, b_overwrite, lo, hi);
  });
}
void add_relu_backward(int64_t n, const uint16_t* y, const float* dy, float* da, float* db, bool a_overwrite,
                       bool b_overwrite) {
  parallel_for(n, 2, [=](int64_t lo, int64_t hi) {
    add_relu_backward_span_bf16(y, dy, da, db, a_overwrite, b_overwrite, lo, hi);
  });
}

void bf16_to_float32(int64_t n, const uint16_t* x, float* y) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = bf16_to_float(x[i]);
  });
}

void float32_to_bf16(int64_t n, const float* x, uint16_t* y) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = float_to_bf16(x[i]);
  });
}

}  // namespace macer::kernels::cpu
