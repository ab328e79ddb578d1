// Test-only, for the SIMDe harnesses (avx512_emulated.c, avxvnni_emulated.c): SIMDe's portable
// fmadd/fnmadd round the product before the add (unless built with FMA), while the hardware
// instructions, and the scalar twins' fmaf, round once. The kernels are compared bit for bit,
// so the emulation must fuse too. EMU_FMA(name, vector type, lanes, sign) defines
// name(a, b, c) = fmaf(sign a, b, c) lane by lane.
#ifndef QSENT_EMU_FMA_H
#define QSENT_EMU_FMA_H
#include <math.h>
#include <string.h>

#define EMU_FMA(name, vec, lanes, sign)                                                            \
    static inline vec name(vec a, vec b, vec c) {                                                  \
        float x[lanes], y[lanes], z[lanes];                                                        \
        memcpy(x, &a, sizeof x);                                                                   \
        memcpy(y, &b, sizeof y);                                                                   \
        memcpy(z, &c, sizeof z);                                                                   \
        for (int i = 0; i < (lanes); i++) x[i] = fmaf(sign x[i], y[i], z[i]);                      \
        vec v;                                                                                     \
        memcpy(&v, x, sizeof v);                                                                   \
        return v;                                                                                  \
    }

#endif
