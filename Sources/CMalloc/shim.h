#ifndef SG_CMALLOC_SHIM_H
#define SG_CMALLOC_SHIM_H
/* mallopt and its parameters; Glibc's Swift module does not export malloc.h. */
#include <malloc.h>
#endif
