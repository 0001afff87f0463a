/* PROVISIONAL math for the CPU pass: scalar libm and simple conversions, correct but slow.
 * Replaced by the vectorisable, verified functions of the same names. */
#ifndef BCE_CPU_MATH_H
#define BCE_CPU_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float bce_expf_neg(float a) { return expf(-a); }
static inline float bce_log1pf_unit(float e) { return log1pf(e); }
static inline double bce_exp_neg(double a) { return exp(-a); }
static inline double bce_log1p_unit(double e) { return log1p(e); }
static inline double bce_log_unit(double m) { return log(m); }

static inline float bce_bits_to_f32(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline uint32_t bce_f32_to_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

static inline float bce_bf16_to_f32(uint16_t h) { return bce_bits_to_f32((uint32_t)h << 16); }
static inline uint16_t bce_f32_to_bf16(float f) {
    uint32_t b = bce_f32_to_bits(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u); /* quiet NaN */
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}
static inline float bce_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return bce_bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) { float v = (float)man * 0x1p-24f; return sign ? -v : v; }
    return bce_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}
static inline uint16_t bce_f32_to_f16(float f) {
    uint32_t b = bce_f32_to_bits(f), sign = (b >> 16) & 0x8000u, abs = b & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to inf */
    if (abs < 0x38800000u) { /* subnormal or zero half: round x * 2**24 to an integer */
        float v = bce_bits_to_f32(abs) * 0x1p24f;
        float r = nearbyintf(v);
        return (uint16_t)(sign | (uint16_t)r);
    }
    uint32_t m = abs - (112u << 23);
    m += 0xfffu + ((m >> 13) & 1u);
    return (uint16_t)(sign | (m >> 13));
}
#endif
