#ifndef CBOTTLEFIT_OPENBLAS_SHIM_H
#define CBOTTLEFIT_OPENBLAS_SHIM_H
#include <cblas.h>
#endif
