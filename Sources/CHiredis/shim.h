#ifndef SG_CHIREDIS_SHIM_H
#define SG_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
/* The connection thread wakes on an eventfd; Glibc's Swift module does not export it. */
#include <sys/eventfd.h>
#endif
