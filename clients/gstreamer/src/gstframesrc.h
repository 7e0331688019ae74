/*
 * gstframesrc.h - framesrc, a GStreamer source reading a framering ring.
 */
#ifndef GST_FRAMESRC_H
#define GST_FRAMESRC_H

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_FRAMESRC (gst_framesrc_get_type())
G_DECLARE_FINAL_TYPE(GstFrameSrc, gst_framesrc, GST, FRAMESRC, GstPushSrc)

/* What framesrc does when it may not borrow another frame: the ring's
 * hold quota (or max-held) is reached because downstream still holds
 * that many of its buffers. */
typedef enum {
	GST_FRAMESRC_QUOTA_COPY = 0, /* copy the frame into a buffer of framesrc's own pool */
	GST_FRAMESRC_QUOTA_DROP = 1, /* drop the frame (counted) */
} GstFrameSrcQuotaPolicy;

/* Where a consumer starts. */
typedef enum {
	GST_FRAMESRC_START_NEXT = 0,   /* the next frame published */
	GST_FRAMESRC_START_OLDEST = 1, /* the oldest frame the ring still has */
} GstFrameSrcStart;

G_END_DECLS

#endif
