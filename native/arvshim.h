/*
 * arvshim: the small C layer between framering's Go Aravis backend
 * (native/aravis.go) and libaravis-0.8. It exists so that each frame costs
 * one cgo call (pop + metadata in one), so that GError and GLib strings
 * become plain C strings, and so that the camera's own threads
 * (Aravis's stream receive thread, its GigE heartbeat thread) only ever run
 * C code here except for the optional completion callback.
 *
 * Ownership, for every object this header hands out:
 *  - frarv_camera: allocated by frarv_open, owned by the caller, released
 *    by frarv_close (exactly once). It owns its ArvCamera and the
 *    control-lost handler connected to the camera's device.
 *  - ArvStream: created by frarv_stream_new, owned by the caller, released
 *    by frarv_stream_free, which joins the stream's receive thread: when it
 *    returns no Aravis thread holds or writes any buffer that was pushed to
 *    that stream (Aravis's queues drop their references).
 *  - ArvBuffer: created by frarv_buffer_new (memory lent by the caller) or
 *    frarv_buffer_alloc (memory Aravis allocates); the caller holds one
 *    reference for the buffer's whole life and drops it with
 *    frarv_buffer_free. frarv_push gives the stream a second reference;
 *    frarv_pop takes it back (drops it) before returning the buffer, so a
 *    popped buffer is alive exactly as long as the caller's own reference.
 *  - char * error and value strings: allocated here (GLib), freed by the
 *    caller with frarv_free. Never NULL: GLib aborts when out of memory.
 *
 * Every function returning char * returns NULL on success and an error
 * message on failure, unless its comment says otherwise.
 */
#ifndef FRAMERING_ARVSHIM_H
#define FRAMERING_ARVSHIM_H

#include <stddef.h>
#include <stdint.h>

#include <arv.h>

typedef struct frarv_camera frarv_camera;

/* Opens the camera name (NULL or "": the first found) and takes control of
 * it. *out is set on success. */
char *frarv_open(const char *name, frarv_camera **out);
/* Releases the camera: disconnects the control-lost handler (no call of it
 * runs or starts after this returns), unrefs the camera (leaving control,
 * stopping the heartbeat thread). */
void frarv_close(frarv_camera *c);

/* 1 once Aravis's heartbeat reported the control of the camera lost. */
int frarv_control_lost(frarv_camera *c);
/* Checks the camera still answers and is still ours: 0 if so, 1 if it
 * answered but we are no longer its controller, -1 if it did not answer
 * (after Aravis's own retries). */
int frarv_probe(frarv_camera *c);
/* 1 for a GigE Vision camera, 0 otherwise (USB3 Vision). */
int frarv_is_gv(frarv_camera *c);

/* One line naming an open camera (vendor, model, serial, id, protocol;
 * "?" for what it does not say). Like every string here, a copy: the
 * GenICam node's own string is freed by the node's next read. */
char *frarv_describe(frarv_camera *c);

/* Sets feature name to value, typed by its GenICam node (integer, float,
 * enumeration, boolean, string; a command is executed when value is
 * "execute"). On success *effective (may be NULL) receives the value read
 * back, malloc'd. */
char *frarv_set_feature(frarv_camera *c, const char *name, const char *value, char **effective);

/* GigE Vision packet size: size 0 negotiates (auto), > 0 sets it, < 0
 * keeps the camera's. *result receives the size in effect (0 on USB3). */
char *frarv_packet_size(frarv_camera *c, int size, unsigned int *result);

typedef struct {
	int64_t width, height;
	uint32_t pixel_format; /* PFNC */
	uint32_t reserved;
	uint64_t payload;      /* bytes a buffer must hold */
	double frame_rate;     /* AcquisitionFrameRate, 0 if unavailable */
	char pixel_format_name[64];
} frarv_geometry;

/* Frees a string this shim returned. */
void frarv_free(char *s);

/* Reads what the camera will send. */
char *frarv_get_geometry(frarv_camera *c, frarv_geometry *out);

/* Sets AcquisitionMode=Continuous and starts / stops acquisition. */
char *frarv_start(frarv_camera *c);
char *frarv_stop(frarv_camera *c);

/* Called on Aravis's receive thread for every completed buffer, after it
 * is in the stream's output queue, in the callback mode. */
typedef void (*frarv_notify_fn)(uintptr_t handle);

/* Creates the camera's stream (its receive thread starts at once, idle
 * until the camera sends). resend: 1 to request missing GigE packets, 0
 * not to. notify != NULL: every completed buffer also calls
 * notify(handle) on the receive thread (the callback mode); NULL: no
 * callback (the polling mode). */
char *frarv_stream_new(frarv_camera *c, int resend, frarv_notify_fn notify, uintptr_t handle, ArvStream **out);
/* Unrefs the stream: joins its thread, drops every queued buffer's
 * reference. No callback runs or starts after it returns. */
void frarv_stream_free(ArvStream *s);

/* Buffers. index is the caller's, kept as the buffer's user data. */
ArvBuffer *frarv_buffer_new(void *mem, size_t size, uint64_t index);
ArvBuffer *frarv_buffer_alloc(size_t size, uint64_t index, void **data);
void frarv_buffer_free(ArvBuffer *b);
/* Gives the stream a reference to b and queues it for filling, its system
 * timestamp cleared (frarv_info.system_timestamp). */
void frarv_push(ArvStream *s, ArvBuffer *b);

/* What a popped buffer says, in one struct. */
typedef struct {
	uint64_t index;            /* the caller's index (user data) */
	uint64_t frame_id;         /* the camera's block id */
	uint64_t timestamp;        /* the camera's timestamp, ns */
	uint64_t system_timestamp; /* host CLOCK_REALTIME ns at the leader; 0: no leader came into this fill */
	uint64_t data;             /* address of the image data */
	uint64_t size;             /* bytes of image data received */
	int32_t status;            /* ArvBufferStatus */
	int32_t payload_type;      /* ArvBufferPayloadType */
	int32_t width, height;
	int32_t x_padding, y_padding;
	uint32_t pixel_format;     /* PFNC */
	int32_t has_image;         /* 1 if the payload has an image part */
} frarv_info;

/* Pops the oldest completed buffer, waiting up to timeout_us (0: do not
 * wait), fills *out and returns 1; 0 if none came. */
int frarv_pop(ArvStream *s, uint64_t timeout_us, frarv_info *out);
/* Lengths of the stream's input and output queues. */
void frarv_queues(ArvStream *s, int *in, int *out);

/* The stream's statistics, by index: *name is Aravis's name ("n_..."),
 * static; returns 0 past the last one or for a non-integer statistic
 * (then *name is NULL). */
int frarv_stream_stat(ArvStream *s, unsigned int i, const char **name, uint64_t *value);
unsigned int frarv_stream_n_stats(ArvStream *s);

/* Camera list. frarv_update_list discovers (returns the count);
 * frarv_list_field returns field 0 id, 1 physical id, 2 address, 3 vendor,
 * 4 model, 5 serial, 6 protocol of camera i ("" when unknown or for
 * another field). */
unsigned int frarv_update_list(void);
char *frarv_list_field(unsigned int i, int field);

#endif
