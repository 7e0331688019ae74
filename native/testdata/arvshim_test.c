/*
 * arvshim_test: drives the Aravis shim (../arvshim.c) on its own, the way
 * the Go backend does, so that it runs under AddressSanitizer and
 * UndefinedBehaviorSanitizer (TestAravis/CSanitizers builds and runs it
 * against the camera simulator):
 *
 *	arvshim_test CAMERA
 *
 * It opens the camera, sets features, lends it buffers of its own memory,
 * streams in the polling mode and then in the callback mode, checks that
 * every complete frame lies in the buffer it was lent, tears down (the
 * stream first, then the buffers, then the camera) and prints "ok".
 */
#include "../arvshim.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BUFFERS 4
#define N_FRAMES 20

static atomic_uint notified;

static void notify(uintptr_t handle)
{
	if (handle == 42)
		atomic_fetch_add(&notified, 1);
}

static int check(char *msg, const char *what)
{
	if (msg == NULL)
		return 0;
	fprintf(stderr, "arvshim_test: %s: %s\n", what, msg);
	frarv_free(msg);
	return 1;
}

static int stream(frarv_camera *c, const frarv_geometry *g, frarv_notify_fn fn)
{
	size_t size = g->payload;
	unsigned char *mem = malloc(N_BUFFERS * size);
	ArvBuffer *bufs[N_BUFFERS];
	ArvStream *s = NULL;
	int rc = 1;
	if (mem == NULL)
		return 1;
	memset(mem, 0xAA, N_BUFFERS * size);
	for (int i = 0; i < N_BUFFERS; i++)
		bufs[i] = frarv_buffer_new(mem + i * size, size, (uint64_t)i);
	if (check(frarv_stream_new(c, 1, fn, 42, &s), "stream"))
		goto out;
	for (int i = 0; i < N_BUFFERS; i++)
		frarv_push(s, bufs[i]);
	if (check(frarv_start(c), "start"))
		goto out;
	int complete = 0;
	for (int n = 0; n < N_FRAMES; n++) {
		frarv_info info;
		if (!frarv_pop(s, 5000000, &info)) {
			fprintf(stderr, "arvshim_test: no frame for 5 s\n");
			goto stop;
		}
		if (info.index >= N_BUFFERS) {
			fprintf(stderr, "arvshim_test: buffer index %llu\n", (unsigned long long)info.index);
			goto stop;
		}
		if (info.status == ARV_BUFFER_STATUS_SUCCESS) {
			if (info.data != (uint64_t)(uintptr_t)(mem + info.index * size) ||
			    info.width != g->width || info.height != g->height || info.pixel_format != g->pixel_format) {
				fprintf(stderr, "arvshim_test: frame %d not where or what it should be\n", n);
				goto stop;
			}
			complete++;
		}
		frarv_push(s, bufs[info.index]);
	}
	uint64_t v;
	const char *name;
	int stats = 0;
	for (unsigned int i = 0; i < frarv_stream_n_stats(s); i++)
		stats += frarv_stream_stat(s, i, &name, &v);
	int in = 0, out = 0;
	frarv_queues(s, &in, &out);
	rc = complete < N_FRAMES / 2 || stats == 0 || in + out > N_BUFFERS;
	if (rc)
		fprintf(stderr, "arvshim_test: %d complete frames, %d statistics, queues %d+%d\n", complete, stats, in, out);
stop:
	if (check(frarv_stop(c), "stop"))
		rc = 1;
out:
	frarv_stream_free(s); /* joins the receive thread: no buffer is Aravis's after it */
	for (int i = 0; i < N_BUFFERS; i++)
		frarv_buffer_free(bufs[i]);
	free(mem);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: arvshim_test CAMERA\n");
		return 2;
	}
	frarv_camera *c = NULL;
	if (check(frarv_open(argv[1], &c), "open"))
		return 1;
	int rc = 1;
	unsigned int ps = 0;
	char *eff = NULL;
	frarv_geometry g;
	if (check(frarv_packet_size(c, 0, &ps), "packet size") ||
	    check(frarv_set_feature(c, "Width", "128", &eff), "set Width"))
		goto out;
	if (strcmp(eff, "128") != 0) {
		fprintf(stderr, "arvshim_test: Width reads back %s\n", eff);
		goto out;
	}
	if (frarv_set_feature(c, "NoSuchFeature", "1", NULL) == NULL) {
		fprintf(stderr, "arvshim_test: a feature that does not exist was set\n");
		goto out;
	}
	char *msg = frarv_set_feature(c, "Height", "tall", NULL);
	if (msg == NULL) {
		fprintf(stderr, "arvshim_test: Height=tall accepted\n");
		goto out;
	}
	frarv_free(msg);
	if (check(frarv_set_feature(c, "AcquisitionFrameRate", "200", NULL), "set rate") ||
	    check(frarv_get_geometry(c, &g), "geometry"))
		goto out;
	char *desc = frarv_describe(c);
	if (desc == NULL || g.width != 128 || g.payload < (uint64_t)(g.width * g.height) || frarv_probe(c) != 0 ||
	    frarv_control_lost(c) || !frarv_is_gv(c)) {
		fprintf(stderr, "arvshim_test: %s: %lldx%lld, payload %llu\n", desc ? desc : "?", (long long)g.width,
			(long long)g.height, (unsigned long long)g.payload);
		frarv_free(desc);
		goto out;
	}
	frarv_free(desc);
	if (stream(c, &g, NULL) || stream(c, &g, notify))
		goto out;
	if (atomic_load(&notified) < N_FRAMES / 2) {
		fprintf(stderr, "arvshim_test: %u notifications\n", atomic_load(&notified));
		goto out;
	}
	unsigned int n = frarv_update_list();
	for (unsigned int i = 0; i < n; i++)
		for (int f = 0; f <= 7; f++)
			frarv_free(frarv_list_field(i, f));
	rc = 0;
out:
	frarv_free(eff);
	frarv_close(c);
	if (rc == 0)
		printf("ok\n");
	return rc;
}
