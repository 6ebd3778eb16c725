#include "tally_kernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define TALLY_X86_SIMD 1
#define TALLY_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define TALLY_X86_SIMD 0
#endif

enum { BLOCK = 32 };

// ---------------------------------------------------------------------------------------------
// Portable pieces.

static uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);  // GGUF data is little-endian, as are the hosts Tally runs on
    return v;
}

/// IEEE binary16 to binary32 (normal, subnormal, zero, infinity and NaN).
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1Fu;
    const uint32_t mantissa = h & 0x3FFu;
    uint32_t bits;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in binary32.
        const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        return sign ? -magnitude : magnitude;
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void quantize_portable(const float *x, ptrdiff_t count, int8_t *q, float *scale, int32_t *sums) {
    for (ptrdiff_t b = 0; b < count / BLOCK; b++) {
        const float *xb = x + b * BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < BLOCK; i++) {
            const float a = fabsf(xb[i]);
            amax = a > amax ? a : amax;
        }
        const float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < BLOCK; i++) {
            float v = xb[i] * inverse;
            // Clamp (a NaN becomes -127) before converting, so the conversion is defined.
            if (!(v >= -127.0f)) v = -127.0f;
            if (v > 127.0f) v = 127.0f;
            const int32_t r = (int32_t)nearbyintf(v);
            q[b * BLOCK + i] = (int8_t)r;
            sum += r;
        }
        scale[b] = amax / 127.0f;
        sums[b] = sum;
    }
}

/// One weight row (`blocks` blocks) dotted with one activation row, portable C.
static float dot_portable(int type, const uint8_t *w, ptrdiff_t blocks, const int8_t *q, const float *scale,
                          const int32_t *sums) {
    float total = 0.0f;
    for (ptrdiff_t b = 0; b < blocks; b++) {
        const int8_t *qb = q + b * BLOCK;
        int32_t isum = 0;
        switch (type) {
        case TALLY_KERNELS_Q8_0: {
            const uint8_t *block = w + b * 34;
            const int8_t *wq = (const int8_t *)(block + 2);
            for (int i = 0; i < BLOCK; i++) isum += (int32_t)wq[i] * qb[i];
            total += half_to_float(load_u16(block)) * scale[b] * (float)isum;
            break;
        }
        case TALLY_KERNELS_Q4_0: {
            const uint8_t *block = w + b * 18;
            for (int j = 0; j < 16; j++) {
                isum += (int32_t)(block[2 + j] & 0x0F) * qb[j] + (int32_t)(block[2 + j] >> 4) * qb[16 + j];
            }
            total += half_to_float(load_u16(block)) * scale[b] * (float)(isum - 8 * sums[b]);
            break;
        }
        default: {  // TALLY_KERNELS_Q4_1
            const uint8_t *block = w + b * 20;
            for (int j = 0; j < 16; j++) {
                isum += (int32_t)(block[4 + j] & 0x0F) * qb[j] + (int32_t)(block[4 + j] >> 4) * qb[16 + j];
            }
            const float d = half_to_float(load_u16(block)), m = half_to_float(load_u16(block + 2));
            total += d * scale[b] * (float)isum + m * scale[b] * (float)sums[b];
            break;
        }
        }
    }
    return total;
}

// ---------------------------------------------------------------------------------------------
// AVX2 pieces: 32 products per block with `maddubs` (unsigned x signed bytes to pairs of 16-bit
// sums, at most 2 * 255 * 127 in magnitude for these ranges, so no saturation), then `madd`
// with ones (to eight 32-bit sums), converted to Float32 and scaled with one FMA per block.

#if TALLY_X86_SIMD

TALLY_AVX2 static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Eight 32-bit sums of the products of 32 unsigned bytes `u` and 32 signed bytes `s`.
TALLY_AVX2 static inline __m256i dot_bytes(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/// The 32 nibbles of a 4-bit block's 16 bytes, in value order (low nibbles, then high).
TALLY_AVX2 static inline __m256i nibbles(const uint8_t *bytes) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)bytes);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/// Two Float16 values at `p` (d and m of a Q4_1 block) as Float32.
TALLY_AVX2 static inline __m128 two_halves(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, sizeof bits);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)bits));
}

/// The Float16 d at `p` times `scale`, in all eight lanes.
TALLY_AVX2 static inline __m256 block_factor(const uint8_t *p, float scale) {
    const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(load_u16(p)));
    return _mm256_broadcastss_ps(_mm_mul_ss(d, _mm_set_ss(scale)));
}

TALLY_AVX2 static float dot_q4_1_avx2(const uint8_t *w, ptrdiff_t blocks, const int8_t *q, const float *scale,
                                      const int32_t *sums) {
    // Lane 0 of `ds` is d * scale (the block's factor), lane 1 m * scale; lane 1 of `offsets`
    // collects m * scale * sum(q). Two blocks per step, each with its own accumulators.
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 offsets0 = _mm_setzero_ps(), offsets1 = _mm_setzero_ps();
    ptrdiff_t b = 0;
    for (; b + 1 < blocks; b += 2) {
        const uint8_t *k0 = w + b * 20, *k1 = k0 + 20;
        const __m128 ds0 = _mm_mul_ps(two_halves(k0), _mm_set1_ps(scale[b]));
        const __m128 ds1 = _mm_mul_ps(two_halves(k1), _mm_set1_ps(scale[b + 1]));
        const __m256i p0 = dot_bytes(nibbles(k0 + 4), _mm256_loadu_si256((const __m256i *)(q + b * BLOCK)));
        const __m256i p1 = dot_bytes(nibbles(k1 + 4), _mm256_loadu_si256((const __m256i *)(q + (b + 1) * BLOCK)));
        acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(ds0), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_broadcastss_ps(ds1), _mm256_cvtepi32_ps(p1), acc1);
        offsets0 = _mm_fmadd_ps(ds0, _mm_set1_ps((float)sums[b]), offsets0);
        offsets1 = _mm_fmadd_ps(ds1, _mm_set1_ps((float)sums[b + 1]), offsets1);
    }
    for (; b < blocks; b++) {
        const uint8_t *k0 = w + b * 20;
        const __m128 ds0 = _mm_mul_ps(two_halves(k0), _mm_set1_ps(scale[b]));
        const __m256i p0 = dot_bytes(nibbles(k0 + 4), _mm256_loadu_si256((const __m256i *)(q + b * BLOCK)));
        acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(ds0), _mm256_cvtepi32_ps(p0), acc0);
        offsets0 = _mm_fmadd_ps(ds0, _mm_set1_ps((float)sums[b]), offsets0);
    }
    const __m128 offsets = _mm_add_ps(offsets0, offsets1);
    return hsum_ps(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_movehdup_ps(offsets));
}

TALLY_AVX2 static float dot_q4_0_avx2(const uint8_t *w, ptrdiff_t blocks, const int8_t *q, const float *scale,
                                      const int32_t *sums) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    ptrdiff_t b = 0;
    // d * scale * (sum(u * q) - 8 * sum(q)): the offset of 8 enters through the block sums,
    // added to the first of the eight lanes.
    for (; b + 1 < blocks; b += 2) {
        const uint8_t *k0 = w + b * 18, *k1 = k0 + 18;
        __m256i p0 = dot_bytes(nibbles(k0 + 2), _mm256_loadu_si256((const __m256i *)(q + b * BLOCK)));
        __m256i p1 = dot_bytes(nibbles(k1 + 2), _mm256_loadu_si256((const __m256i *)(q + (b + 1) * BLOCK)));
        p0 = _mm256_sub_epi32(p0, _mm256_setr_epi32(8 * sums[b], 0, 0, 0, 0, 0, 0, 0));
        p1 = _mm256_sub_epi32(p1, _mm256_setr_epi32(8 * sums[b + 1], 0, 0, 0, 0, 0, 0, 0));
        acc0 = _mm256_fmadd_ps(block_factor(k0, scale[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(block_factor(k1, scale[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < blocks; b++) {
        const uint8_t *k0 = w + b * 18;
        __m256i p0 = dot_bytes(nibbles(k0 + 2), _mm256_loadu_si256((const __m256i *)(q + b * BLOCK)));
        p0 = _mm256_sub_epi32(p0, _mm256_setr_epi32(8 * sums[b], 0, 0, 0, 0, 0, 0, 0));
        acc0 = _mm256_fmadd_ps(block_factor(k0, scale[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

TALLY_AVX2 static float dot_q8_0_avx2(const uint8_t *w, ptrdiff_t blocks, const int8_t *q, const float *scale) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    ptrdiff_t b = 0;
    // Signed x signed: |w| (an unsigned byte, 128 for -128) times q with w's sign.
    for (; b + 1 < blocks; b += 2) {
        const uint8_t *k0 = w + b * 34, *k1 = k0 + 34;
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(k0 + 2));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(k1 + 2));
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(q + b * BLOCK));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(q + (b + 1) * BLOCK));
        const __m256i p0 = dot_bytes(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x0, w0));
        const __m256i p1 = dot_bytes(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x1, w1));
        acc0 = _mm256_fmadd_ps(block_factor(k0, scale[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(block_factor(k1, scale[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < blocks; b++) {
        const uint8_t *k0 = w + b * 34;
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(k0 + 2));
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(q + b * BLOCK));
        const __m256i p0 = dot_bytes(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x0, w0));
        acc0 = _mm256_fmadd_ps(block_factor(k0, scale[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/// ``quantize_portable`` with the same results bit for bit: the same maximum (a NaN is skipped,
/// as `max_ps` returns its second operand), the same reciprocal, clamp (a NaN becomes -127)
/// and rounding (nearest, ties to even).
TALLY_AVX2 static void quantize_avx2(const float *x, ptrdiff_t count, int8_t *q, float *scale, int32_t *sums) {
    const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (ptrdiff_t b = 0; b < count / BLOCK; b++) {
        const float *xb = x + b * BLOCK;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[i]), amax);
        }
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
        m4 = _mm_max_ps(_mm_movehl_ps(m4, m4), m4);
        m4 = _mm_max_ss(_mm_movehdup_ps(m4), m4);
        const float top = _mm_cvtss_f32(m4);
        const __m256 inverse = _mm256_set1_ps(top > 0.0f ? 127.0f / top : 0.0f);
        __m256i r[4];
        for (int i = 0; i < 4; i++) {
            const __m256 clamped = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], inverse), lo), hi);
            r[i] = _mm256_cvtps_epi32(_mm256_round_ps(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        const __m256i total = _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]), _mm256_add_epi32(r[2], r[3]));
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
        t4 = _mm_add_epi32(t4, _mm_unpackhi_epi64(t4, t4));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 1));
        // Packing works within 128-bit halves; the permutation puts the 32 bytes back in order.
        const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i *)(q + b * BLOCK), _mm256_permutevar8x32_epi32(packed, order));
        scale[b] = top / 127.0f;
        sums[b] = _mm_cvtsi128_si32(t4);
    }
}

TALLY_AVX2 static void gemv_avx2(int type, const uint8_t *weights, ptrdiff_t row_bytes, ptrdiff_t blocks,
                                 ptrdiff_t o0, ptrdiff_t o1, const int8_t *q, const float *scale,
                                 const int32_t *sums, ptrdiff_t n, float *y, ptrdiff_t ldy, int accumulate) {
    for (ptrdiff_t o = o0; o < o1; o++) {
        const uint8_t *w = weights + o * row_bytes;
        for (ptrdiff_t r = 0; r < n; r++) {
            const int8_t *qr = q + r * BLOCK * blocks;
            const float *sr = scale + r * blocks;
            const int32_t *ur = sums + r * blocks;
            float v;
            switch (type) {
            case TALLY_KERNELS_Q8_0: v = dot_q8_0_avx2(w, blocks, qr, sr); break;
            case TALLY_KERNELS_Q4_0: v = dot_q4_0_avx2(w, blocks, qr, sr, ur); break;
            default: v = dot_q4_1_avx2(w, blocks, qr, sr, ur); break;
            }
            float *out = y + r * ldy + o;
            *out = accumulate ? *out + v : v;
        }
    }
}

#endif

// ---------------------------------------------------------------------------------------------
// Dispatch.

int tally_kernels_simd_available(void) {
#if TALLY_X86_SIMD
    static int cached = -1;  // a benign race: every thread computes the same value
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
#else
    return 0;
#endif
}

void tally_kernels_quantize_q8(const float *x, ptrdiff_t count, int8_t *q, float *scale, int32_t *sums, int allow_simd) {
#if TALLY_X86_SIMD
    if (allow_simd && tally_kernels_simd_available()) {
        quantize_avx2(x, count, q, scale, sums);
        return;
    }
#else
    (void)allow_simd;
#endif
    quantize_portable(x, count, q, scale, sums);
}

int tally_kernels_gemv_q8(int type, const uint8_t *weights, ptrdiff_t row_bytes, ptrdiff_t blocks,
                          ptrdiff_t o0, ptrdiff_t o1, const int8_t *q, const float *scale,
                          const int32_t *sums, ptrdiff_t n, float *y, ptrdiff_t ldy, int accumulate,
                          int allow_simd) {
    if (type != TALLY_KERNELS_Q8_0 && type != TALLY_KERNELS_Q4_0 && type != TALLY_KERNELS_Q4_1) return -1;
#if TALLY_X86_SIMD
    if (allow_simd && tally_kernels_simd_available()) {
        gemv_avx2(type, weights, row_bytes, blocks, o0, o1, q, scale, sums, n, y, ldy, accumulate);
        return 0;
    }
#else
    (void)allow_simd;
#endif
    for (ptrdiff_t o = o0; o < o1; o++) {
        const uint8_t *w = weights + o * row_bytes;
        for (ptrdiff_t r = 0; r < n; r++) {
            const float v = dot_portable(type, w, blocks, q + r * BLOCK * blocks, scale + r * blocks, sums + r * blocks);
            float *out = y + r * ldy + o;
            *out = accumulate ? *out + v : v;
        }
    }
    return 0;
}
