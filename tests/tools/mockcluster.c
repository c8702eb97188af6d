/*
 * mockcluster: librdkafka's mock cluster as a standalone Kafka over TCP, for tests and demos.
 *
 *   mockcluster [--brokers N] [--topic name:partitions[:replication]]...
 *
 * Prints "BOOTSTRAP host:port,..." on stdout, then answers commands on stdin, one a line,
 * with "OK" or "ERR text":
 *   topic NAME PARTITIONS     create a topic (the mock cannot CreateTopics itself)
 *   down ID | up ID           take broker ID down / bring it back
 *   push_err APIKEY ERR [N]   the next N (default 1) requests of APIKEY fail with ERR (numbers)
 *   leader TOPIC PART ID      move a partition's leader
 *   quit                      exit
 * Exits on stdin EOF, SIGTERM or SIGINT.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *spec)
{
	char name[256];
	int parts = 1, repl = 1;

	if (sscanf(spec, "%255[^:]:%d:%d", name, &parts, &repl) < 1 || parts < 1 || repl < 1)
		return -1;
	return rd_kafka_mock_topic_create(mc, name, parts, repl) ? -1 : 0;
}

static void command(rd_kafka_mock_cluster_t *mc, char *line)
{
	char a[256], b[300];
	int x, y, n = 1;

	line[strcspn(line, "\r\n")] = '\0';
	if (sscanf(line, "topic %255s %d", a, &x) == 2) {
		snprintf(b, sizeof(b), "%s:%d", a, x);
		puts(create_topic(mc, b) ? "ERR cannot create topic" : "OK");
	} else if (sscanf(line, "down %d", &x) == 1) {
		puts(rd_kafka_mock_broker_set_down(mc, x) ? "ERR no such broker" : "OK");
	} else if (sscanf(line, "up %d", &x) == 1) {
		puts(rd_kafka_mock_broker_set_up(mc, x) ? "ERR no such broker" : "OK");
	} else if (sscanf(line, "push_err %d %d %d", &x, &y, &n) >= 2) {
		rd_kafka_resp_err_t *errs = calloc((size_t)n, sizeof(*errs));
		int i;

		for (i = 0; errs && i < n; i++)
			errs[i] = (rd_kafka_resp_err_t)y;
		if (errs)
			rd_kafka_mock_push_request_errors_array(mc, (int16_t)x, (size_t)n, errs);
		free(errs);
		puts(errs ? "OK" : "ERR out of memory");
	} else if (sscanf(line, "leader %255s %d %d", a, &x, &y) == 3) {
		puts(rd_kafka_mock_partition_set_leader(mc, a, x, y) ? "ERR cannot set leader" : "OK");
	} else if (strcmp(line, "quit") == 0) {
		stop = 1;
		puts("OK");
	} else if (line[0]) {
		printf("ERR unknown command: %s\n", line);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	char errstr[512], line[1024];
	struct sigaction sa;
	int brokers = 1, i;
	size_t used = 0;
	rd_kafka_t *rk;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
			brokers = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
			i++; /* created once the cluster exists */
		} else {
			fprintf(stderr, "usage: mockcluster [--brokers N] [--topic name:partitions[:replication]]...\n");
			return 2;
		}
	}
	/* A producer handle only hosts the cluster; it never produces. */
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
		fprintf(stderr, "mockcluster: %s\n", errstr);
		return 1;
	}
	if (!(mc = rd_kafka_mock_cluster_new(rk, brokers))) {
		fprintf(stderr, "mockcluster: cannot create the mock cluster\n");
		return 1;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--topic") == 0 && create_topic(mc, argv[++i])) {
			fprintf(stderr, "mockcluster: bad --topic '%s' (name:partitions[:replication])\n", argv[i]);
			return 2;
		} else if (strcmp(argv[i], "--brokers") == 0) {
			i++;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	while (!stop) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		ssize_t r;
		char *nl;

		if (poll(&pfd, 1, 500) <= 0)
			continue;
		r = read(0, line + used, sizeof(line) - 1 - used);
		if (r <= 0)
			break;
		used += (size_t)r;
		line[used] = '\0';
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			command(mc, line);
			used -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, used + 1);
		}
		if (used == sizeof(line) - 1)
			used = 0; /* an overlong line is dropped */
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
