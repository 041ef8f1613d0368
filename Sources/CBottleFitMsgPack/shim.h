#ifndef CBOTTLEFIT_MSGPACK_SHIM_H
#define CBOTTLEFIT_MSGPACK_SHIM_H
#include <msgpack.h>
#endif
