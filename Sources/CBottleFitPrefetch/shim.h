#ifndef BOTTLEFIT_PREFETCH_SHIM_H
#define BOTTLEFIT_PREFETCH_SHIM_H

/* Swift has no prefetch instruction; the GEMM microkernels in BottleFitKernels call this to
   start loading packed weights from memory a few hundred cycles before they are needed
   (the hardware prefetcher alone left them waiting on DRAM: 160 instead of 225 GFLOP/s).
   The corresponding compiler builtin is __builtin_prefetch (read, keep in all cache levels). */
static inline void bottlefit_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
