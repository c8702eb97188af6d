/* decode.c: not written yet. */
#include "common.h"
