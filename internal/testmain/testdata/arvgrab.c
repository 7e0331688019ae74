/*
 * arvgrab: a plain Aravis client, the reference framering's camera frames
 * are compared with. It opens a camera, sets its features with Aravis's
 * own parser (arv_device_set_features_from_string, as arv-tool does),
 * grabs n complete frames into buffers Aravis allocates, and writes each
 * one's image bytes to DIR/<block id>.raw. On stdout: "WIDTH HEIGHT
 * PIXELFORMAT" as the camera reports them.
 *
 *	arvgrab CAMERA N DIR ["Feature=Value Feature=Value ..."]
 *
 * Exit status: 0 on success, 1 on any failure (message on stderr).
 * C11, -Wall -Wextra clean; the tests build it with ASan and UBSan.
 */
#include <arv.h>
#include <stdio.h>
#include <stdlib.h>

#define N_BUFFERS 8

static int fail(const char *what, GError *err)
{
	fprintf(stderr, "arvgrab: %s: %s\n", what, err != NULL && err->message != NULL ? err->message : "failed");
	g_clear_error(&err);
	return 1;
}

int main(int argc, char **argv)
{
	GError *err = NULL;
	if (argc < 4) {
		fprintf(stderr, "usage: arvgrab CAMERA N DIR [FEATURES]\n");
		return 1;
	}
	const char *camera = argv[1];
	long n = strtol(argv[2], NULL, 10);
	const char *dir = argv[3];
	const char *features = argc > 4 ? argv[4] : "";

	ArvCamera *cam = arv_camera_new(camera, &err);
	if (cam == NULL)
		return fail("open camera", err);
	int rc = 1;
	ArvStream *stream = NULL;
	if (features[0] != '\0' && !arv_device_set_features_from_string(arv_camera_get_device(cam), features, &err)) {
		fail("set features", err);
		goto out;
	}
	gint x, y, w, h;
	arv_camera_get_region(cam, &x, &y, &w, &h, &err);
	if (err != NULL) {
		fail("read region", err);
		goto out;
	}
	const char *pf = arv_camera_get_pixel_format_as_string(cam, &err);
	if (err != NULL) {
		fail("read pixel format", err);
		goto out;
	}
	printf("%d %d %s\n", w, h, pf);
	guint payload = arv_camera_get_payload(cam, &err);
	if (err != NULL) {
		fail("read payload", err);
		goto out;
	}
	stream = arv_camera_create_stream(cam, NULL, NULL, &err);
	if (stream == NULL) {
		fail("create stream", err);
		goto out;
	}
	for (int i = 0; i < N_BUFFERS; i++)
		arv_stream_push_buffer(stream, arv_buffer_new_allocate(payload));
	arv_camera_set_acquisition_mode(cam, ARV_ACQUISITION_MODE_CONTINUOUS, &err);
	g_clear_error(&err);
	arv_camera_start_acquisition(cam, &err);
	if (err != NULL) {
		fail("start acquisition", err);
		goto out;
	}
	long got = 0;
	while (got < n) {
		ArvBuffer *b = arv_stream_timeout_pop_buffer(stream, 5000000);
		if (b == NULL) {
			fprintf(stderr, "arvgrab: no frame for 5 s after %ld\n", got);
			goto stop;
		}
		if (arv_buffer_get_status(b) == ARV_BUFFER_STATUS_SUCCESS) {
			size_t size = 0;
			const void *data = arv_buffer_get_image_data(b, &size);
			char path[4096];
			snprintf(path, sizeof path, "%s/%llu.raw", dir, (unsigned long long)arv_buffer_get_frame_id(b));
			FILE *f = fopen(path, "wb");
			if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
				fprintf(stderr, "arvgrab: write %s failed\n", path);
				arv_stream_push_buffer(stream, b);
				goto stop;
			}
			got++;
		}
		arv_stream_push_buffer(stream, b);
	}
	rc = 0;
stop:
	arv_camera_stop_acquisition(cam, &err);
	g_clear_error(&err);
out:
	if (stream != NULL)
		g_object_unref(stream);
	g_object_unref(cam);
	return rc;
}
