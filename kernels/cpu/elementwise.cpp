// CPU elementwise ops (kernels/elementwise.h): plain loops, split over the cores in contiguous
// blocks (kernels/cpu/parallel.h); every element is computed alone, so threads change no bit.
#include "kernels/elementwise.h"

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

void relu_forward(int64_t n, const float* x, float* y) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx, bool overwrite) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = dy[i];  // loaded unconditionally: the loop becomes a vector select
      const float d = y[i] > 0.0f ? g : 0.0f;
      dx[i] = overwrite ? d : dx[i] + d;
    }
  });
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
  parallel_for(n, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float v = a[i] + b[i];
      y[i] = v > 0.0f ? v : 0.0f;
    }
  });
}

void add_relu_backward(int64_t n, const float* y, const float* dy, float* da, float* db, bool a_overwrite,
                       bool b_overwrite) {
  parallel_for(n, 2, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float d = dy[i];
      const float g = y[i] > 0.0f ? d : 0.0f;
      if (da) da[i] = a_overwrite ? g : da[i] + g;
      if (db) db[i] = b_overwrite ? g : db[i] + g;
    }
  });
}

}  // namespace macer::kernels::cpu
