// Integer dot-product kernels for decoding with block-quantised weights.
//
// A decode step multiplies a few activation rows by every weight of the model. Rounding each
// activation row to signed 8-bit blocks of 32 values (one Float32 scale per block) lets the
// products of 4- and 8-bit weights with 8-bit activations run as integer multiply-adds,
// 32 per block, with one float multiply-add per block for the scales (the arithmetic
// llama.cpp uses when decoding). Weights stay in their GGML block layout:
//   Q8_0: Float16 d, 32 x int8 q             value = d * q
//   Q4_0: Float16 d, 16 bytes of nibbles     value = d * (q - 8)
//   Q4_1: Float16 d, Float16 m, 16 bytes     value = d * q + m
// where byte j of a 4-bit block holds value j in its low nibble and value j + 16 in its high one.
//
// On x86-64 CPUs with AVX2, FMA and F16C the products use those instructions (chosen at run
// time); elsewhere a portable C loop computes the same integer sums.
#ifndef TALLY_KERNELS_H
#define TALLY_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// GGML type ids of the weight formats the integer products take.
enum {
    TALLY_KERNELS_Q4_0 = 2,
    TALLY_KERNELS_Q4_1 = 3,
    TALLY_KERNELS_Q8_0 = 8,
};

/// Rounds `count` values (a multiple of 32) to 8-bit blocks: for block b,
/// `scale[b] = max|x| / 127`, `q[i] = round(x[i] / scale[b])` (nearest, ties to even, within
/// -127...127; 0 for an all-zero block) and `sums[b]` = the sum of the block's `q`. The AVX2
/// and portable paths give identical results; `allow_simd` 0 forces the portable one.
void tally_kernels_quantize_q8(const float *x, ptrdiff_t count, int8_t *q, float *scale, int32_t *sums, int allow_simd);

/// `y[r * ldy + o] = dot(weight row o, activation row r)` (`accumulate`: `+=`) for `o` in
/// `o0 ..< o1` and `r` in `0 ..< n`, where weight row o starts at `weights + o * row_bytes` and
/// holds `blocks` blocks of `type`, and activation row r is `q + r * 32 * blocks` with its
/// blocks' `scale` and `sums` at `r * blocks`. `allow_simd` 0 forces the portable loop.
/// Returns 0, or -1 for a type it does not take (nothing is written then).
int tally_kernels_gemv_q8(int type, const uint8_t *weights, ptrdiff_t row_bytes, ptrdiff_t blocks,
                          ptrdiff_t o0, ptrdiff_t o1, const int8_t *q, const float *scale,
                          const int32_t *sums, ptrdiff_t n, float *y, ptrdiff_t ldy, int accumulate,
                          int allow_simd);

/// 1 when this CPU takes the AVX2 path, else 0.
int tally_kernels_simd_available(void);

#ifdef __cplusplus
}
#endif

#endif
