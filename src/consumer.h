/* consumer.h: interface defined with its implementation. */
#ifndef KS_CONSUMER_H
#define KS_CONSUMER_H
#endif
