/* offsets.h: interface defined with its implementation. */
#ifndef KS_OFFSETS_H
#define KS_OFFSETS_H
#endif
