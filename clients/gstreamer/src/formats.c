/*
 * formats.c - the PFNC <-> GStreamer caps table (formats.h).
 *
 * The same table, in the other direction, is native/gst_common.go (the
 * producer's GStreamer source): a row here is a byte-for-byte identical
 * memory layout, never a conversion.
 */
#include "formats.h"

#include <string.h>

#define RAW "video/x-raw"
#define BAYER "video/x-bayer"
#define UNK GST_VIDEO_FORMAT_UNKNOWN

static const char packed_why[] =
	"GStreamer has no raw format for PFNC bit-packed gray (its GRAY10_LE32 packs three 10-bit pixels in 32 bits, "
	"another layout); run the producer with an unpacked format (Mono10, Mono12, Mono16: GRAY16_LE)";
static const char bayer16_why[] =
	"GStreamer names 16-bit Bayer (video/x-bayer, format=xxxx16le) only from version 1.24; this GStreamer is older";

static const fs_format formats[] = {
	{0x01080001, "Mono8", RAW, "GRAY8", GST_VIDEO_FORMAT_GRAY8, 8, 0, NULL},
	/* Unpacked 10- and 12-bit gray: the sample in the low bits of a
	 * little-endian uint16, exactly GRAY16_LE's bytes (not scaled). */
	{0x01100003, "Mono10", RAW, "GRAY16_LE", GST_VIDEO_FORMAT_GRAY16_LE, 16, 0, NULL},
	{0x01100005, "Mono12", RAW, "GRAY16_LE", GST_VIDEO_FORMAT_GRAY16_LE, 16, 0, NULL},
	{0x01100007, "Mono16", RAW, "GRAY16_LE", GST_VIDEO_FORMAT_GRAY16_LE, 16, 0, NULL},
	{0x010A0046, "Mono10p", NULL, NULL, UNK, 10, 0, packed_why},
	{0x010C0047, "Mono12p", NULL, NULL, UNK, 12, 0, packed_why},
	{0x010C0004, "Mono10Packed", NULL, NULL, UNK, 12, 0, packed_why},
	{0x010C0006, "Mono12Packed", NULL, NULL, UNK, 12, 0, packed_why},
	{0x01080008, "BayerGR8", BAYER, "grbg", UNK, 8, 0, NULL},
	{0x01080009, "BayerRG8", BAYER, "rggb", UNK, 8, 0, NULL},
	{0x0108000A, "BayerGB8", BAYER, "gbrg", UNK, 8, 0, NULL},
	{0x0108000B, "BayerBG8", BAYER, "bggr", UNK, 8, 0, NULL},
	{0x0110002E, "BayerGR16", BAYER, "grbg16le", UNK, 16, 24, NULL},
	{0x0110002F, "BayerRG16", BAYER, "rggb16le", UNK, 16, 24, NULL},
	{0x01100030, "BayerGB16", BAYER, "gbrg16le", UNK, 16, 24, NULL},
	{0x01100031, "BayerBG16", BAYER, "bggr16le", UNK, 16, 24, NULL},
	{0x02180014, "RGB8", RAW, "RGB", GST_VIDEO_FORMAT_RGB, 24, 0, NULL},
	{0x02180015, "BGR8", RAW, "BGR", GST_VIDEO_FORMAT_BGR, 24, 0, NULL},
	{0x02100032, "YUV422_8", RAW, "YUY2", GST_VIDEO_FORMAT_YUY2, 16, 0, NULL},
	{0x0210001F, "YUV422_8_UYVY", RAW, "UYVY", GST_VIDEO_FORMAT_UYVY, 16, 0, NULL},
};

const fs_format *fs_format_of(uint32_t pfnc)
{
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (formats[i].pfnc == pfnc)
			return &formats[i];
	return NULL;
}

int fs_format_usable(const fs_format *f, const char **why)
{
	guint major, minor, micro, nano;
	if (f->refused) {
		*why = f->refused;
		return 0;
	}
	gst_version(&major, &minor, &micro, &nano);
	if (major == 1 && minor < f->min_minor) {
		*why = bayer16_why;
		return 0;
	}
	*why = NULL;
	return 1;
}

static int is_422(const fs_format *f) { return f->vfmt == GST_VIDEO_FORMAT_YUY2 || f->vfmt == GST_VIDEO_FORMAT_UYVY; }

int fs_layout_init(fs_layout *l, uint32_t pfnc, uint32_t width, uint32_t height, uint32_t stride, uint64_t length)
{
	memset(l, 0, sizeof *l);
	const fs_format *f = fs_format_of(pfnc);
	if (f == NULL)
		return FS_LAYOUT_UNKNOWN_FORMAT;
	l->fmt = f;
	l->width = width;
	l->height = height;
	l->stride = stride;
	const char *why;
	if (!fs_format_usable(f, &why))
		return FS_LAYOUT_REFUSED_FORMAT;
	/* GStreamer's sizes are gint: keep every dimension well inside. */
	if (width == 0 || height == 0 || width > (1u << 16) || height > (1u << 16) || stride > (1u << 24))
		return FS_LAYOUT_BAD_GEOMETRY;
	if (is_422(f) && width % 2 != 0)
		return FS_LAYOUT_BAD_GEOMETRY;
	l->row_bytes = (uint64_t)width * f->bits / 8;
	if ((uint64_t)stride < l->row_bytes)
		return FS_LAYOUT_BAD_GEOMETRY;
	l->frame_bytes = (uint64_t)stride * (height - 1) + l->row_bytes;
	if (l->frame_bytes > length)
		return FS_LAYOUT_TOO_LONG;
	if (f->vfmt != GST_VIDEO_FORMAT_UNKNOWN) {
		GstVideoInfo vi;
		if (!gst_video_info_set_format(&vi, f->vfmt, width, height))
			return FS_LAYOUT_BAD_GEOMETRY;
		l->gst_stride = (uint32_t)GST_VIDEO_INFO_PLANE_STRIDE(&vi, 0);
		l->gst_size = GST_VIDEO_INFO_SIZE(&vi);
	} else {
		/* Bayer: rows 4-byte aligned (bayer2rgb, videotestsrc, rtpgstdepay
		 * users all assume it). */
		l->gst_stride = (uint32_t)GST_ROUND_UP_4(l->row_bytes);
		l->gst_size = (uint64_t)l->gst_stride * height;
	}
	return FS_LAYOUT_OK;
}

int fs_layout_same(const fs_layout *a, const fs_layout *b)
{
	return a->fmt == b->fmt && a->width == b->width && a->height == b->height && a->stride == b->stride;
}

GstCaps *fs_layout_caps(const fs_layout *l, gint fps_n, gint fps_d)
{
	const fs_format *f = l->fmt;
	if (f->vfmt == GST_VIDEO_FORMAT_UNKNOWN)
		return gst_caps_new_simple(f->media, "format", G_TYPE_STRING, f->gst, "width", G_TYPE_INT, (gint)l->width,
					   "height", G_TYPE_INT, (gint)l->height, "framerate", GST_TYPE_FRACTION, fps_n,
					   fps_d, NULL);
	GstVideoInfo vi;
	gst_video_info_set_format(&vi, f->vfmt, l->width, l->height);
	GST_VIDEO_INFO_FPS_N(&vi) = fps_n;
	GST_VIDEO_INFO_FPS_D(&vi) = fps_d;
	if (is_422(f)) {
		/* framering's 4:2:2 is full-range BT.601 (docs/LAYOUT.md Appendix A,
		 * the exporter's conversion). */
		vi.colorimetry.range = GST_VIDEO_COLOR_RANGE_0_255;
		vi.colorimetry.matrix = GST_VIDEO_COLOR_MATRIX_BT601;
		vi.colorimetry.transfer = GST_VIDEO_TRANSFER_BT601;
		vi.colorimetry.primaries = GST_VIDEO_COLOR_PRIMARIES_SMPTE170M;
	}
	return gst_video_info_to_caps(&vi);
}

GstCaps *fs_template_caps(void)
{
	GString *raw = g_string_new(NULL), *bayer = g_string_new(NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
		const fs_format *f = &formats[i];
		const char *why;
		if (!fs_format_usable(f, &why))
			continue;
		GString *s = strcmp(f->media, RAW) == 0 ? raw : bayer;
		int dup = 0; /* GRAY16_LE is Mono10, Mono12 and Mono16: listed once */
		for (size_t j = 0; j < i; j++)
			dup |= strcmp(formats[j].media ? formats[j].media : "", f->media) == 0 &&
			       strcmp(formats[j].gst, f->gst) == 0;
		if (dup)
			continue;
		g_string_append_printf(s, "%s%s", s->len ? ", " : "", f->gst);
	}
	gchar *desc = g_strdup_printf("%s, format=(string){ %s }, width=(int)[1, 65536], height=(int)[1, 65536], "
				      "framerate=(fraction)[0/1, MAX]; "
				      "%s, format=(string){ %s }, width=(int)[1, 65536], height=(int)[1, 65536], "
				      "framerate=(fraction)[0/1, MAX]",
				      RAW, raw->str, BAYER, bayer->str);
	GstCaps *caps = gst_caps_from_string(desc);
	g_free(desc);
	g_string_free(raw, TRUE);
	g_string_free(bayer, TRUE);
	return caps;
}
