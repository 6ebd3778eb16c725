#ifndef TALLY_COPENBLAS_SHIM_H
#define TALLY_COPENBLAS_SHIM_H
#include <cblas.h>

/* Declared by OpenBLAS itself; repeated here so the module does not depend on
   which cblas.h the alternatives system picked. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* Large tensors are allocated and freed every training step; keeping freed blocks in the
   heap (instead of mmap/munmap each time) avoids page faults on every reuse. glibc only. */
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
static inline void tally_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* the largest value glibc accepts */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
static inline void tally_keep_freed_memory(void) {}
#endif
#endif
