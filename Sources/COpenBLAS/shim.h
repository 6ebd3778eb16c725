#ifndef TALLY_COPENBLAS_SHIM_H
#define TALLY_COPENBLAS_SHIM_H
#include <cblas.h>

/* Declared by OpenBLAS itself; repeated here so the module does not depend on
   which cblas.h the alternatives system picked. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
