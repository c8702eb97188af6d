/* kinesis.c: not written yet. */
#include "common.h"
