#ifndef CBOTTLEFIT_ZLIB_SHIM_H
#define CBOTTLEFIT_ZLIB_SHIM_H
/* zlib, for the gzip-compressed IDX files of the Fashion-MNIST dataset: Foundation on
   Linux has no gzip inflation (NSData.decompressed(using:) exists only on Darwin). */
#include <zlib.h>
#endif
