// Philox 4x32-10 counter-based generator (Salmon et al. 2011, as cuRAND and Random123 have it)
// and the Gaussian draw built on it; the same code runs on the host and inside CUDA kernels.
#pragma once
#include <cstdint>
#include <math.h>  // sqrtf, logf, cosf, sinf in the global namespace (host and device)

#if defined(__CUDACC__)
#define MACER_HD __host__ __device__ __forceinline__
#else
#define MACER_HD inline
#endif

namespace macer::philox {

struct U32x4 {
  uint32_t v[4];
};

MACER_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Ten rounds of Philox 4x32 on counter c with key (k0, k1).
MACER_HD U32x4 philox4x32_10(U32x4 c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c.v[0], &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c.v[2], &hi1);
    U32x4 next = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    c = next;
  }
  return c;
}

// Uniform in (0, 1]: never 0, so log() below is finite.
MACER_HD float uniform(uint32_t bits) {
  return static_cast<float>(bits) * 2.3283064365386963e-10f + 1.1641532182693481e-10f;
}

// Four standard normals from the block `block` of stream (seed, counter): two Box-Muller pairs.
// Element i of a noise tensor uses normals4(seed, counter, i / 4).v[i % 4].
struct F32x4 {
  float v[4];
};
MACER_HD F32x4 normals4(uint64_t seed, uint64_t counter, uint64_t block) {
  U32x4 ctr = {{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32)}};
  U32x4 bits = philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const float two_pi = 6.2831853071795865f;
  F32x4 out;
  for (int pair = 0; pair < 2; ++pair) {
    float u1 = uniform(bits.v[2 * pair]);
    float u2 = uniform(bits.v[2 * pair + 1]);
    float radius = sqrtf(-2.0f * logf(u1));
    out.v[2 * pair] = radius * cosf(two_pi * u2);
    out.v[2 * pair + 1] = radius * sinf(two_pi * u2);
  }
  return out;
}

}  // namespace macer::philox
