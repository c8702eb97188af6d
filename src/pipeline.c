/* pipeline.c: not written yet. */
#include "pipeline.h"
#include "log.h"

int ks_pipeline_run(const ks_conf *conf, volatile sig_atomic_t *stop)
{
	(void)conf;
	(void)stop;
	ks_err_log("pipeline", "not implemented yet");
	return 1;
}
