//go:build aravis && cgo

/*
 * arvshim: see arvshim.h for the contract and the ownership of everything
 * handed out. C11; built by cgo in builds with the aravis tag, and on its
 * own by the sanitizer test's driver (testdata/arvshim_test.c).
 */
#include "arvshim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GigE Vision bootstrap register: control channel privilege (CCP), and its
 * two privilege bits (Aravis's arvgvcpprivate.h has the same values). */
#define FRARV_GVBS_CCP 0x0a00
#define FRARV_CCP_EXCLUSIVE 0x1
#define FRARV_CCP_CONTROL 0x2

struct frarv_camera {
	ArvCamera *camera;
	ArvDevice *device; /* borrowed from camera */
	gulong lost_handler;
	gint lost; /* atomic: set by the heartbeat thread's control-lost */
};

typedef struct {
	frarv_notify_fn fn;
	uintptr_t handle;
} notify_data;

/* Strings handed out are GLib's (g_strdup*), freed with frarv_free. GLib
 * aborts the process when out of memory, as it does everywhere inside
 * Aravis, so they are never NULL. */
static char *errorf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static char *errorf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return s;
}

void frarv_free(char *s)
{
	g_free(s);
}

/* gerror turns a GError into a message and frees it. */
static char *gerror(GError *err, const char *what, const char *arg)
{
	char *s = errorf("%s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
			 err != NULL && err->message != NULL ? err->message : "unknown error");
	g_clear_error(&err);
	return s;
}

static char *dup_or_empty(const char *s)
{
	return g_strdup(s != NULL ? s : "");
}

static void on_control_lost(ArvDevice *device, gpointer user_data)
{
	(void)device;
	frarv_camera *c = user_data;
	g_atomic_int_set(&c->lost, 1);
}

char *frarv_open(const char *name, frarv_camera **out)
{
	GError *err = NULL;
	*out = NULL;
	ArvCamera *cam = arv_camera_new(name != NULL && name[0] != '\0' ? name : NULL, &err);
	if (cam == NULL)
		return gerror(err, "open camera", name != NULL && name[0] != '\0' ? name : "(first found)");
	g_clear_error(&err);
	ArvDevice *dev = arv_camera_get_device(cam);
	if (ARV_IS_GV_DEVICE(dev) && !arv_gv_device_is_controller(ARV_GV_DEVICE(dev))) {
		g_object_unref(cam);
		return errorf("open camera %s: another application controls it (GigE Vision control channel taken)",
			      name != NULL && name[0] != '\0' ? name : "(first found)");
	}
	frarv_camera *c = calloc(1, sizeof *c);
	if (c == NULL) {
		g_object_unref(cam);
		return errorf("open camera: out of memory");
	}
	c->camera = cam;
	c->device = dev;
	c->lost_handler = g_signal_connect(dev, "control-lost", G_CALLBACK(on_control_lost), c);
	*out = c;
	return NULL;
}

void frarv_close(frarv_camera *c)
{
	if (c == NULL)
		return;
	if (c->lost_handler != 0)
		g_signal_handler_disconnect(c->device, c->lost_handler);
	/* The last reference: the device's finalize joins its heartbeat thread,
	 * so no control-lost handler can still be running on c after this. */
	g_object_unref(c->camera);
	free(c);
}

int frarv_control_lost(frarv_camera *c)
{
	return g_atomic_int_get(&c->lost) != 0;
}

int frarv_is_gv(frarv_camera *c)
{
	return arv_camera_is_gv_device(c->camera) ? 1 : 0;
}

int frarv_probe(frarv_camera *c)
{
	guint32 v = 0;
	GError *err = NULL;
	if (ARV_IS_GV_DEVICE(c->device)) {
		if (!arv_device_read_register(c->device, FRARV_GVBS_CCP, &v, &err)) {
			g_clear_error(&err);
			return -1;
		}
		return (v & (FRARV_CCP_CONTROL | FRARV_CCP_EXCLUSIVE)) != 0 ? 0 : 1;
	}
	/* USB3 Vision: address 0 of the ABRM (the GenCP version). */
	if (!arv_device_read_register(c->device, 0, &v, &err)) {
		g_clear_error(&err);
		return -1;
	}
	return 0;
}

char *frarv_describe(frarv_camera *c)
{
	/* Each getter's string belongs to its GenICam node and may be freed by
	 * the next register read: copy each one at once. */
	GError *err = NULL;
	char *vendor = dup_or_empty(arv_camera_get_vendor_name(c->camera, &err));
	g_clear_error(&err);
	char *model = dup_or_empty(arv_camera_get_model_name(c->camera, &err));
	g_clear_error(&err);
	char *serial = dup_or_empty(arv_camera_get_device_serial_number(c->camera, &err));
	g_clear_error(&err);
	char *id = dup_or_empty(arv_camera_get_device_id(c->camera, &err));
	g_clear_error(&err);
	char *s = errorf("%s %s serial %s id %s (%s)", vendor[0] ? vendor : "?", model[0] ? model : "?",
			 serial[0] ? serial : "?", id[0] ? id : "?", ARV_IS_GV_DEVICE(c->device) ? "GigE Vision" : "USB3 Vision");
	g_free(vendor);
	g_free(model);
	g_free(serial);
	g_free(id);
	return s;
}

char *frarv_set_feature(frarv_camera *c, const char *name, const char *value, char **effective)
{
	GError *err = NULL;
	if (effective != NULL)
		*effective = NULL;
	ArvGcNode *node = arv_device_get_feature(c->device, name);
	if (!ARV_IS_GC_FEATURE_NODE(node))
		return errorf("set feature %s: the camera has no such feature", name);
	if (ARV_IS_GC_COMMAND(node)) {
		if (strcmp(value, "execute") != 0)
			return errorf("set feature %s: a command: its value must be \"execute\"", name);
		arv_gc_command_execute(ARV_GC_COMMAND(node), &err);
		if (err != NULL)
			return gerror(err, "execute command", name);
		if (effective != NULL)
			*effective = dup_or_empty("execute");
		return NULL;
	}
	arv_gc_feature_node_set_value_from_string(ARV_GC_FEATURE_NODE(node), value, &err);
	if (err != NULL) {
		char *msg = errorf("set feature %s=%s: %s", name, value, err->message ? err->message : "refused");
		g_clear_error(&err);
		return msg;
	}
	if (effective != NULL) {
		const char *v = arv_gc_feature_node_get_value_as_string(ARV_GC_FEATURE_NODE(node), &err);
		g_clear_error(&err);
		*effective = dup_or_empty(v);
	}
	return NULL;
}

char *frarv_packet_size(frarv_camera *c, int size, unsigned int *result)
{
	GError *err = NULL;
	*result = 0;
	if (!arv_camera_is_gv_device(c->camera))
		return NULL;
	if (size == 0) {
		arv_camera_gv_auto_packet_size(c->camera, &err);
		if (err != NULL)
			return gerror(err, "negotiate packet size", NULL);
	} else if (size > 0) {
		arv_camera_gv_set_packet_size(c->camera, size, &err);
		if (err != NULL)
			return gerror(err, "set packet size", NULL);
	}
	*result = arv_camera_gv_get_packet_size(c->camera, &err);
	if (err != NULL)
		return gerror(err, "read packet size", NULL);
	return NULL;
}

char *frarv_get_geometry(frarv_camera *c, frarv_geometry *out)
{
	GError *err = NULL;
	gint x = 0, y = 0, w = 0, h = 0;
	memset(out, 0, sizeof *out);
	arv_camera_get_region(c->camera, &x, &y, &w, &h, &err);
	if (err != NULL)
		return gerror(err, "read region", NULL);
	ArvPixelFormat pf = arv_camera_get_pixel_format(c->camera, &err);
	if (err != NULL)
		return gerror(err, "read pixel format", NULL);
	guint payload = arv_camera_get_payload(c->camera, &err);
	if (err != NULL)
		return gerror(err, "read payload size", NULL);
	out->width = w;
	out->height = h;
	out->pixel_format = (uint32_t)pf;
	const char *pfname = arv_camera_get_pixel_format_as_string(c->camera, &err);
	g_clear_error(&err);
	snprintf(out->pixel_format_name, sizeof out->pixel_format_name, "%s", pfname != NULL ? pfname : "");
	out->payload = payload;
	if (arv_camera_is_frame_rate_available(c->camera, &err) && err == NULL) {
		double r = arv_camera_get_frame_rate(c->camera, &err);
		if (err == NULL)
			out->frame_rate = r;
	}
	g_clear_error(&err);
	return NULL;
}

char *frarv_start(frarv_camera *c)
{
	GError *err = NULL;
	if (arv_camera_is_feature_available(c->camera, "AcquisitionMode", &err) && err == NULL) {
		arv_camera_set_acquisition_mode(c->camera, ARV_ACQUISITION_MODE_CONTINUOUS, &err);
		if (err != NULL)
			return gerror(err, "set acquisition mode", "Continuous");
	}
	g_clear_error(&err);
	arv_camera_start_acquisition(c->camera, &err);
	if (err != NULL)
		return gerror(err, "start acquisition", NULL);
	return NULL;
}

char *frarv_stop(frarv_camera *c)
{
	GError *err = NULL;
	arv_camera_stop_acquisition(c->camera, &err);
	if (err != NULL)
		return gerror(err, "stop acquisition", NULL);
	return NULL;
}

/* stream_cb runs on Aravis's receive thread. It neither blocks nor
 * allocates: it forwards BUFFER_DONE (the buffer is already in the output
 * queue when Aravis calls it) to notify. */
static void stream_cb(void *user_data, ArvStreamCallbackType type, ArvBuffer *buffer)
{
	(void)buffer;
	if (type != ARV_STREAM_CALLBACK_TYPE_BUFFER_DONE || user_data == NULL)
		return;
	notify_data *nd = user_data;
	nd->fn(nd->handle);
}

char *frarv_stream_new(frarv_camera *c, int resend, frarv_notify_fn notify, uintptr_t handle, ArvStream **out)
{
	GError *err = NULL;
	*out = NULL;
	notify_data *nd = NULL;
	if (notify != NULL) {
		nd = g_new0(notify_data, 1);
		nd->fn = notify;
		nd->handle = handle;
	}
	/* The stream frees nd (g_free) when it is finalized, failed or not. */
	ArvStream *s = arv_camera_create_stream_full(c->camera, nd != NULL ? stream_cb : NULL, nd,
						     nd != NULL ? g_free : NULL, &err);
	if (s == NULL)
		return gerror(err, "create stream", NULL);
	g_clear_error(&err);
	if (ARV_IS_GV_STREAM(s))
		g_object_set(s, "packet-resend",
			     resend ? ARV_GV_STREAM_PACKET_RESEND_ALWAYS : ARV_GV_STREAM_PACKET_RESEND_NEVER, NULL);
	*out = s;
	return NULL;
}

void frarv_stream_free(ArvStream *s)
{
	if (s != NULL)
		g_object_unref(s);
}

ArvBuffer *frarv_buffer_new(void *mem, size_t size, uint64_t index)
{
	return arv_buffer_new_full(size, mem, (void *)(uintptr_t)index, NULL);
}

ArvBuffer *frarv_buffer_alloc(size_t size, uint64_t index, void **data)
{
	ArvBuffer *b = arv_buffer_new_full(size, NULL, (void *)(uintptr_t)index, NULL);
	size_t n = 0;
	*data = (void *)arv_buffer_get_data(b, &n);
	return b;
}

void frarv_buffer_free(ArvBuffer *b)
{
	if (b != NULL)
		g_object_unref(b);
}

void frarv_push(ArvStream *s, ArvBuffer *b)
{
	/* Aravis sets the system timestamp only from a frame's leader, and
	 * keeps the last fill's otherwise: cleared here, it says at the pop
	 * whether this fill got its frame's leader. */
	arv_buffer_set_system_timestamp(b, 0);
	arv_stream_push_buffer(s, g_object_ref(b));
}

int frarv_pop(ArvStream *s, uint64_t timeout_us, frarv_info *out)
{
	ArvBuffer *b = timeout_us > 0 ? arv_stream_timeout_pop_buffer(s, timeout_us) : arv_stream_try_pop_buffer(s);
	if (b == NULL)
		return 0;
	memset(out, 0, sizeof *out);
	out->index = (uint64_t)(uintptr_t)arv_buffer_get_user_data(b);
	out->status = (int32_t)arv_buffer_get_status(b);
	out->payload_type = (int32_t)arv_buffer_get_payload_type(b);
	out->frame_id = arv_buffer_get_frame_id(b);
	out->timestamp = arv_buffer_get_timestamp(b);
	out->system_timestamp = arv_buffer_get_system_timestamp(b);
	/* The image part's description is filled from the frame's leader: read
	 * it only for a complete frame (a lost leader leaves it unset). */
	ArvBufferPayloadType pt = arv_buffer_get_payload_type(b);
	if (out->status == ARV_BUFFER_STATUS_SUCCESS &&
	    (pt == ARV_BUFFER_PAYLOAD_TYPE_IMAGE || pt == ARV_BUFFER_PAYLOAD_TYPE_EXTENDED_CHUNK_DATA ||
	     pt == ARV_BUFFER_PAYLOAD_TYPE_MULTIPART) &&
	    arv_buffer_get_n_parts(b) >= 1 &&
	    arv_buffer_get_part_data_type(b, 0) == ARV_BUFFER_PART_DATA_TYPE_2D_IMAGE) {
		size_t size = 0;
		gint px = 0, py = 0;
		out->data = (uint64_t)(uintptr_t)arv_buffer_get_image_data(b, &size);
		out->size = size;
		out->width = arv_buffer_get_image_width(b);
		out->height = arv_buffer_get_image_height(b);
		arv_buffer_get_image_padding(b, &px, &py);
		out->x_padding = px;
		out->y_padding = py;
		out->pixel_format = (uint32_t)arv_buffer_get_image_pixel_format(b);
		out->has_image = 1;
	}
	/* The stream's reference: the caller's own keeps b alive. */
	g_object_unref(b);
	return 1;
}

void frarv_queues(ArvStream *s, int *in, int *out)
{
	arv_stream_get_n_buffers(s, in, out);
}

unsigned int frarv_stream_n_stats(ArvStream *s)
{
	return arv_stream_get_n_infos(s);
}

int frarv_stream_stat(ArvStream *s, unsigned int i, const char **name, uint64_t *value)
{
	*name = NULL;
	*value = 0;
	if (i >= arv_stream_get_n_infos(s) || arv_stream_get_info_type(s, i) != G_TYPE_UINT64)
		return 0;
	*name = arv_stream_get_info_name(s, i);
	*value = arv_stream_get_info_uint64(s, i);
	return *name != NULL;
}

unsigned int frarv_update_list(void)
{
	arv_update_device_list();
	return arv_get_n_devices();
}

char *frarv_list_field(unsigned int i, int field)
{
	switch (field) {
	case 0:
		return dup_or_empty(arv_get_device_id(i));
	case 1:
		return dup_or_empty(arv_get_device_physical_id(i));
	case 2:
		return dup_or_empty(arv_get_device_address(i));
	case 3:
		return dup_or_empty(arv_get_device_vendor(i));
	case 4:
		return dup_or_empty(arv_get_device_model(i));
	case 5:
		return dup_or_empty(arv_get_device_serial_nbr(i));
	case 6:
		return dup_or_empty(arv_get_device_protocol(i));
	}
	return dup_or_empty(NULL);
}
