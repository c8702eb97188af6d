/* sigv4.c: not written yet. */
#include "common.h"
