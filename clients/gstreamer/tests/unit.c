/*
 * unit.c - framesrc's format table, layouts and caps (src/formats.c),
 * without a ring: every PFNC format the ring has either maps to caps
 * GStreamer parses back to the same layout, or is refused with a reason;
 * bad geometry is refused before any product can overflow.
 *
 * Built and run under ASan+UBSan by `make unit`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "formats.h"

#include "check.h"

/* Every PFNC code framering's producer writes (frame/format.go). */
static const struct {
	uint32_t pfnc;
	const char *media; /* NULL: refused */
	const char *format;
	uint32_t bits;
} cases[] = {
	{0x01080001, "video/x-raw", "GRAY8", 8},
	{0x01100003, "video/x-raw", "GRAY16_LE", 16},
	{0x01100005, "video/x-raw", "GRAY16_LE", 16},
	{0x01100007, "video/x-raw", "GRAY16_LE", 16},
	{0x010A0046, NULL, NULL, 0},
	{0x010C0047, NULL, NULL, 0},
	{0x010C0004, NULL, NULL, 0},
	{0x010C0006, NULL, NULL, 0},
	{0x01080008, "video/x-bayer", "grbg", 8},
	{0x01080009, "video/x-bayer", "rggb", 8},
	{0x0108000A, "video/x-bayer", "gbrg", 8},
	{0x0108000B, "video/x-bayer", "bggr", 8},
	{0x02180014, "video/x-raw", "RGB", 24},
	{0x02180015, "video/x-raw", "BGR", 24},
	{0x02100032, "video/x-raw", "YUY2", 16},
	{0x0210001F, "video/x-raw", "UYVY", 16},
};

static void test_formats(void)
{
	GstCaps *tmpl = fs_template_caps();
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const fs_format *f = fs_format_of(cases[i].pfnc);
		CHECK(f != NULL, "PFNC 0x%08x unknown", cases[i].pfnc);
		if (f == NULL)
			continue;
		const char *why = NULL;
		int usable = fs_format_usable(f, &why);
		if (cases[i].media == NULL) {
			CHECK(!usable && why != NULL && strlen(why) > 10, "%s should be refused with a reason", f->name);
			fs_layout l;
			CHECK(fs_layout_init(&l, f->pfnc, 64, 8, 128, 1 << 20) == FS_LAYOUT_REFUSED_FORMAT, "%s", f->name);
			continue;
		}
		CHECK(usable, "%s refused: %s", f->name, why);
		CHECK(strcmp(f->media, cases[i].media) == 0 && strcmp(f->gst, cases[i].format) == 0, "%s: %s %s", f->name,
		      f->media, f->gst);
		/* 30 pixels: odd row lengths, so GStreamer's 4-byte-aligned
		 * stride differs from the packed one for 8- and 24-bit formats. */
		uint32_t w = 30, h = 7, row = w * cases[i].bits / 8;
		fs_layout l;
		int rc = fs_layout_init(&l, f->pfnc, w, h, row, (uint64_t)row * h);
		CHECK(rc == FS_LAYOUT_OK, "%s: layout %d", f->name, rc);
		CHECK(l.row_bytes == row && l.frame_bytes == (uint64_t)row * h, "%s", f->name);
		CHECK(l.gst_stride == GST_ROUND_UP_4(row) && l.gst_size == (uint64_t)l.gst_stride * h, "%s: gst stride %u",
		      f->name, l.gst_stride);
		GstCaps *caps = fs_layout_caps(&l, 25, 1);
		CHECK(gst_caps_is_fixed(caps), "%s: caps not fixed", f->name);
		CHECK(gst_caps_can_intersect(caps, tmpl), "%s: caps outside the template", f->name);
		GstStructure *s = gst_caps_get_structure(caps, 0);
		gint cw = 0, ch = 0, fn = 0, fd = 0;
		CHECK(gst_structure_has_name(s, cases[i].media), "%s", f->name);
		CHECK(strcmp(gst_structure_get_string(s, "format"), cases[i].format) == 0, "%s", f->name);
		CHECK(gst_structure_get_int(s, "width", &cw) && cw == (gint)w, "%s", f->name);
		CHECK(gst_structure_get_int(s, "height", &ch) && ch == (gint)h, "%s", f->name);
		CHECK(gst_structure_get_fraction(s, "framerate", &fn, &fd) && fn == 25 && fd == 1, "%s", f->name);
		if (f->vfmt != GST_VIDEO_FORMAT_UNKNOWN) {
			/* GStreamer reads the caps back to the layout framesrc assumed. */
			GstVideoInfo vi;
			CHECK(gst_video_info_from_caps(&vi, caps), "%s", f->name);
			CHECK(GST_VIDEO_INFO_FORMAT(&vi) == f->vfmt, "%s", f->name);
			CHECK((uint32_t)GST_VIDEO_INFO_PLANE_STRIDE(&vi, 0) == l.gst_stride, "%s", f->name);
			CHECK(GST_VIDEO_INFO_SIZE(&vi) == l.gst_size, "%s", f->name);
		}
		gst_caps_unref(caps);

		/* The same geometry with a wider stride is another layout. */
		fs_layout l2;
		CHECK(fs_layout_init(&l2, f->pfnc, w, h, row + 64, (uint64_t)(row + 64) * h) == FS_LAYOUT_OK, "%s", f->name);
		CHECK(fs_layout_same(&l, &l) && !fs_layout_same(&l, &l2), "%s", f->name);
	}
	gst_caps_unref(tmpl);
	CHECK(fs_format_of(0x12345678) == NULL, "unknown PFNC");
}

static void test_geometry(void)
{
	fs_layout l;
	const uint32_t mono8 = 0x01080001, yuy2 = 0x02100032, rgb = 0x02180014;
	CHECK(fs_layout_init(&l, 0x12345678, 8, 8, 8, 64) == FS_LAYOUT_UNKNOWN_FORMAT, "unknown");
	CHECK(fs_layout_init(&l, mono8, 0, 8, 8, 64) == FS_LAYOUT_BAD_GEOMETRY, "zero width");
	CHECK(fs_layout_init(&l, mono8, 8, 0, 8, 64) == FS_LAYOUT_BAD_GEOMETRY, "zero height");
	CHECK(fs_layout_init(&l, mono8, 8, 8, 7, 64) == FS_LAYOUT_BAD_GEOMETRY, "stride < row");
	CHECK(fs_layout_init(&l, rgb, 8, 8, 23, 1000) == FS_LAYOUT_BAD_GEOMETRY, "RGB stride < row");
	CHECK(fs_layout_init(&l, yuy2, 7, 8, 16, 1000) == FS_LAYOUT_BAD_GEOMETRY, "odd 4:2:2 width");
	CHECK(fs_layout_init(&l, mono8, 8, 8, 8, 63) == FS_LAYOUT_TOO_LONG, "one byte short");
	/* The last row needs only its pixels, not the whole stride. */
	CHECK(fs_layout_init(&l, mono8, 8, 8, 16, 16 * 7 + 8) == FS_LAYOUT_OK, "padded last row");
	CHECK(fs_layout_init(&l, mono8, 8, 8, 16, 16 * 7 + 7) == FS_LAYOUT_TOO_LONG, "padded last row short");
	/* Sizes that would overflow 32-bit products are refused, not wrapped. */
	CHECK(fs_layout_init(&l, mono8, 1u << 17, 8, 1u << 17, UINT64_MAX) == FS_LAYOUT_BAD_GEOMETRY, "huge width");
	CHECK(fs_layout_init(&l, mono8, 8, UINT32_MAX, 8, UINT64_MAX) == FS_LAYOUT_BAD_GEOMETRY, "huge height");
	CHECK(fs_layout_init(&l, mono8, 8, 8, UINT32_MAX, UINT64_MAX) == FS_LAYOUT_BAD_GEOMETRY, "huge stride");
	CHECK(fs_layout_init(&l, mono8, 1u << 16, 1u << 14, 1u << 16, (uint64_t)1 << 30) == FS_LAYOUT_OK, "1 GiB frame");
	CHECK(l.frame_bytes == (uint64_t)1 << 30, "frame size");
	/* 4 GiB: past what GStreamer's video info takes; refused, not wrapped. */
	CHECK(fs_layout_init(&l, mono8, 1u << 16, 1u << 16, 1u << 16, (uint64_t)1 << 32) == FS_LAYOUT_BAD_GEOMETRY,
	      "4 GiB frame");
}

int main(int argc, char **argv)
{
	gst_init(&argc, &argv);
	test_formats();
	test_geometry();
	if (failures > 0) {
		fprintf(stderr, "unit: %d failure(s)\n", failures);
		return 1;
	}
	printf("unit: ok\n");
	return 0;
}
