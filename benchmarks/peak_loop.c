/* The arithmetic peak of this CPU, measured: a hand loop of independent multiply-add chains per
 * dtype, built with -O3 -march=native -fopenmp by benchmarks/roofline.py.
 *
 * Each chain feeds its accumulator back into the next instruction, so nothing can be hoisted
 * or folded away; 12 chains hide the instruction latency (4-5 cycles) behind two pipes. The
 * widest instruction the compiler targets for this CPU is used:
 *   fp32  AVX-512 or AVX2 FMA (vfmadd): 16 or 8 multiply-adds per instruction
 *   bf16  AVX-512 BF16 dot products (vdpbf16ps): 32; without them bf16 math runs in fp32
 *   int8  AVX-512 VNNI or AVX-VNNI (vpdpbusd): 64 or 32; else AVX2 vpmaddubsw (32, then
 *         vpmaddwd and vpaddd to accumulate, as int8 GEMM kernels do without VNNI)
 */
#include <immintrin.h>
#include <omp.h>

#define CHAINS 12

enum { FP32 = 0, BF16 = 1, INT8 = 2 };

#if defined(__AVX512F__)
typedef __m512 vf;
#define LANES 16
#define FMA(acc, a, b) _mm512_fmadd_ps(acc, a, b)
#define SETF(x) _mm512_set1_ps(x)
#define SUMF(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 vf;
#define LANES 8
#define FMA(acc, a, b) _mm256_fmadd_ps(acc, a, b)
#define SETF(x) _mm256_set1_ps(x)
static float SUMF(__m256 v) {
  float out[8];
  _mm256_storeu_ps(out, v);
  float sum = 0;
  for (int i = 0; i < 8; i++) sum += out[i];
  return sum;
}
#endif

static double fp32_loop(long iterations, double *macs) {
  vf acc[CHAINS];
  const vf a = SETF(0.999999f), b = SETF(1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = SETF((float)i);
  for (long n = 0; n < iterations; n++)
    for (int i = 0; i < CHAINS; i++) acc[i] = FMA(acc[i], a, b);
  float sum = 0;
  for (int i = 0; i < CHAINS; i++) sum += SUMF(acc[i]);
  *macs = (double)iterations * CHAINS * LANES;
  return sum;
}

#if defined(__AVX512BF16__)
static double bf16_loop(long iterations, double *macs) {
  __m512 acc[CHAINS];
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long n = 0; n < iterations; n++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  float sum = 0;
  for (int i = 0; i < CHAINS; i++) sum += _mm512_reduce_add_ps(acc[i]);
  *macs = (double)iterations * CHAINS * 32;
  return sum;
}
#define BF16_KERNEL "avx512_bf16 vdpbf16ps, 32 multiply-adds per instruction"
#else
#define bf16_loop fp32_loop
#define BF16_KERNEL "no bf16 dot-product instruction: the fp32 FMA loop (bf16 math runs in fp32)"
#endif

#if defined(__AVX512VNNI__)
static double int8_loop(long iterations, double *macs) {
  __m512i acc[CHAINS];
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_epi32(i);
  for (long n = 0; n < iterations; n++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  long sum = 0;
  for (int i = 0; i < CHAINS; i++) sum += _mm512_reduce_add_epi32(acc[i]);
  *macs = (double)iterations * CHAINS * 64;
  return (double)sum;
}
#define INT8_KERNEL "avx512_vnni vpdpbusd, 64 multiply-adds per instruction"
#elif defined(__AVXVNNI__)
static double int8_loop(long iterations, double *macs) {
  __m256i acc[CHAINS];
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_epi32(i);
  for (long n = 0; n < iterations; n++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
  int out[8];
  long sum = 0;
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_si256((__m256i *)out, acc[i]);
    for (int k = 0; k < 8; k++) sum += out[k];
  }
  *macs = (double)iterations * CHAINS * 32;
  return (double)sum;
}
#define INT8_KERNEL "avx_vnni vpdpbusd, 32 multiply-adds per instruction"
#else
static double int8_loop(long iterations, double *macs) {
  __m256i acc[CHAINS];
  const __m256i b = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_epi32(i);
  for (long n = 0; n < iterations; n++)
    for (int i = 0; i < CHAINS; i++) {
      const __m256i pairs = _mm256_maddubs_epi16(acc[i], b);  /* the accumulator as u8 input */
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pairs, ones));
    }
  int out[8];
  long sum = 0;
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_si256((__m256i *)out, acc[i]);
    for (int k = 0; k < 8; k++) sum += out[k];
  }
  *macs = (double)iterations * CHAINS * 32;
  return (double)sum;
}
#define INT8_KERNEL "avx2 vpmaddubsw + vpmaddwd + vpaddd, 32 multiply-adds per 3 instructions"
#endif

const char *kernel(int kind) {
  if (kind == BF16) return BF16_KERNEL;
  if (kind == INT8) return INT8_KERNEL;
  return LANES == 16 ? "avx512f vfmadd, 16 multiply-adds per instruction"
                     : "avx2 vfmadd, 8 multiply-adds per instruction";
}

/* Operations (2 per multiply-add) per second of `threads` threads each running the loop
 * `iterations` times; `sink` keeps the results alive. */
double ops_per_second(int kind, long iterations, int threads, double *sink) {
  double macs_total = 0, result = 0;
  const double start = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : macs_total, result)
  {
    double macs = 0;
    if (kind == BF16) result += bf16_loop(iterations, &macs);
    else if (kind == INT8) result += int8_loop(iterations, &macs);
    else result += fp32_loop(iterations, &macs);
    macs_total += macs;
  }
  const double seconds = omp_get_wtime() - start;
  *sink = result;
  return 2 * macs_total / seconds;
}
