/* decode_avro.c: not written yet. */
#include "common.h"
