/*
 * putload: the ceiling of a PutRecords endpoint. Sends the same 500-record request over N
 * parallel connections for S seconds (libcurl multi) and prints "records/s N".
 *   putload URL SECONDS CONNECTIONS RECORD_BYTES
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

int main(int argc, char **argv)
{
	const char *url;
	int secs, conns, size, i, running;
	unsigned char *data;
	struct curl_slist *h = NULL;
	long long done = 0;
	int64_t end;
	CURLM *m;
	ks_buf body;

	if (argc != 5)
		return 2;
	url = argv[1];
	secs = atoi(argv[2]);
	conns = atoi(argv[3]);
	size = atoi(argv[4]);
	data = calloc(1, (size_t)size);
	ks_buf_init(&body, 0);
	ks_buf_puts(&body, "{\"StreamName\":\"bench\",\"Records\":[");
	for (i = 0; i < 500; i++) {
		ks_buf_puts(&body, i ? ",{\"Data\":\"" : "{\"Data\":\"");
		ks_buf_base64(&body, data, (size_t)size);
		ks_buf_printf(&body, "\",\"PartitionKey\":\"{\\\"id\\\":%d}\"}", i);
	}
	ks_buf_puts(&body, "]}");
	h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.1");
	h = curl_slist_append(h, "X-Amz-Target: Kinesis_20131202.PutRecords");
	h = curl_slist_append(h, "Expect:");
	m = curl_multi_init();
	for (i = 0; i < conns; i++) {
		CURL *e = curl_easy_init();

		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body.len);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
		curl_multi_add_handle(m, e);
	}
	end = ks_now_ms() + secs * 1000LL;
	while (ks_now_ms() < end) {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg == CURLMSG_DONE) {
				long code = 0;

				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
				if (code == 200)
					done += 500;
				curl_multi_remove_handle(m, msg->easy_handle);
				curl_multi_add_handle(m, msg->easy_handle);
			}
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	printf("records/s %.0f\n", (double)done / secs);
	return 0;
}
