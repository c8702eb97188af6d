/* decode_avro.c: Avro to JSON (written with the registry client). */
#include "registry.h"
