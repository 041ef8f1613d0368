#ifndef CBOTTLEFIT_ZMQ_SHIM_H
#define CBOTTLEFIT_ZMQ_SHIM_H
#include <zmq.h>
#endif
