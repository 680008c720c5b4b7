#ifndef SOCKET2_CURING_SHIM_H
#define SOCKET2_CURING_SHIM_H

#include <liburing.h>
#include <linux/io_uring.h>

#endif
