/* dlq.h: interface defined with its implementation. */
#ifndef KS_DLQ_H
#define KS_DLQ_H
#endif
