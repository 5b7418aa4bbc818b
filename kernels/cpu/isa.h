// Kernels compiled twice, for AVX-512 (x86-64-v4) and for the baseline x86-64, the copy chosen
// when the program loads (GCC's target_clones): for loops whose bf16 conversions the baseline's
// SSE2 cannot vectorize well (bench/RESULTS.md, 2026-11-30 third entry).
#pragma once

// On a function with plain loops (what it inlines is compiled in each copy; what it calls is not).
// Off under the sanitizers (their start-up runs after the load-time choice) and other compilers.
// "arch=x86-64-v4" needs GCC 11 or later.
#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define MACER_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define MACER_CPU_CLONES
#endif
