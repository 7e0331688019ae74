/*
 * formats.h - framering pixel formats (GenICam PFNC codes, as the ring's
 * descriptors carry them) and the GStreamer caps of the same bytes.
 *
 * Only formats whose memory layout GStreamer has a name for are mapped;
 * the others are refused with the reason (fs_format.refused), never
 * converted: framesrc hands GStreamer the ring's own bytes.
 */
#ifndef FS_FORMATS_H
#define FS_FORMATS_H

#include <stdint.h>

#include <gst/gst.h>
#include <gst/video/video.h>

typedef struct fs_format {
	uint32_t pfnc;      /* GenICam PFNC code */
	const char *name;   /* PFNC name, for messages */
	const char *media;  /* "video/x-raw" or "video/x-bayer" */
	const char *gst;    /* the caps' format string */
	GstVideoFormat vfmt; /* video/x-raw only; GST_VIDEO_FORMAT_UNKNOWN for Bayer */
	uint32_t bits;      /* bits per pixel in memory (8, 16, 24) */
	guint min_minor;    /* the GStreamer 1.x minor version that names it */
	const char *refused; /* NULL, or why framesrc cannot hand it to GStreamer */
} fs_format;

/* fs_format_of returns the table row of a PFNC code, or NULL for a code
 * framering does not know. A row with refused != NULL is a format
 * GStreamer (or this GStreamer version: fs_format_usable) has no name
 * for. */
const fs_format *fs_format_of(uint32_t pfnc);

/* fs_format_usable tells whether this GStreamer (its runtime version)
 * can carry the format; if not, *why says why (static string). */
int fs_format_usable(const fs_format *f, const char **why);

/* The geometry of one frame as the ring describes it, and the layout
 * GStreamer assumes for the same caps when a buffer carries no
 * GstVideoMeta (its default stride). */
typedef struct fs_layout {
	const fs_format *fmt;
	uint32_t width, height, stride; /* the ring's */
	uint64_t row_bytes;             /* bytes of pixels in one row */
	uint64_t frame_bytes;           /* stride * (height - 1) + row_bytes */
	uint32_t gst_stride;            /* GStreamer's default stride */
	uint64_t gst_size;              /* GStreamer's default frame size */
} fs_layout;

/* Why fs_layout_init refused a frame. */
enum fs_layout_error {
	FS_LAYOUT_OK = 0,
	FS_LAYOUT_UNKNOWN_FORMAT = 1, /* a PFNC code framering does not know */
	FS_LAYOUT_REFUSED_FORMAT = 2, /* known, but GStreamer cannot carry it */
	FS_LAYOUT_BAD_GEOMETRY = 3,   /* zero or absurd sizes, stride < row */
	FS_LAYOUT_TOO_LONG = 4,       /* the rows do not fit in the frame's length */
};

/* fs_layout_init fills *l from a frame's metadata and checks it: known,
 * carriable format; width, height >= 1; stride >= row bytes (even width
 * for 4:2:2); stride * (height - 1) + row bytes <= length. Every product
 * is computed in 64 bits. Returns FS_LAYOUT_OK or an fs_layout_error. */
int fs_layout_init(fs_layout *l, uint32_t pfnc, uint32_t width, uint32_t height, uint32_t stride,
		   uint64_t length);

/* fs_layout_same tells whether two layouts make the same caps and buffer
 * layout (format, width, height and stride). */
int fs_layout_same(const fs_layout *a, const fs_layout *b);

/* fs_layout_caps returns new caps for l (framerate fps_n/fps_d, 0/1 for
 * unknown). Raw YUV is full-range BT.601, as framering's sources write
 * it. Owner: the caller unrefs them. */
GstCaps *fs_layout_caps(const fs_layout *l, gint fps_n, gint fps_d);

/* fs_template_caps returns the caps framesrc can produce with this
 * GStreamer (its pad template). Owner: the caller. */
GstCaps *fs_template_caps(void);

#endif
