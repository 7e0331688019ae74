/*
 * decode.c - the pure decoders: headers and messages from plain bytes.
 *
 * Every check mirrors the Go reader (ringbuf/layout.go decodeDataHeader,
 * decodeControlHeader; ringbuf/protocol.go decodeWelcome, decodeNote) in
 * the same order, with the same verdicts: a wrong magic, version, header
 * size or consumer count is FR_ERR_INCOMPATIBLE (another layout); anything
 * else out of bounds is FR_ERR_CORRUPT. All arithmetic is in uint64_t, and
 * with the constraints of LAYOUT.md 5 checked first no sum can wrap.
 *
 * These functions read only their arguments: they can be fuzzed on
 * arbitrary bytes (fuzz/fuzz_decode.c).
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "framering.h"

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	if (why == NULL || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

int fr__geometry(uint32_t slots, uint32_t index_count, uint64_t capacity, struct fr_geo *g)
{
	if (slots < 1 || slots > FR_MAX_SLOTS)
		return FR_ERR_CORRUPT;
	if (index_count < slots || index_count > FR_MAX_INDEX || (index_count & (index_count - 1)) != 0)
		return FR_ERR_CORRUPT;
	if (capacity < FR_PAGE || capacity > FR_MAX_CAPACITY || capacity % FR_PAGE != 0)
		return FR_ERR_CORRUPT;
	memset(g, 0, sizeof *g);
	g->slots = slots;
	g->index_count = index_count;
	g->capacity = capacity;
	g->desc_off = FR_HEADER_SIZE;
	g->index_off = g->desc_off + (uint64_t)slots * FR_DESC_SIZE;
	g->payload_off = align_up(g->index_off + (uint64_t)index_count * FR_INDEX_ENTRY_SIZE, FR_PAGE);
	g->data_size = g->payload_off + (uint64_t)slots * capacity;
	g->holds_off = FR_HEADER_SIZE;
	g->table_off = g->holds_off + (uint64_t)slots * FR_HOLD_SIZE;
	g->control_size = align_up(g->table_off + (uint64_t)FR_MAX_CONSUMERS * FR_ENTRY_SIZE, FR_PAGE);
	return 0;
}

int fr__decode_data_header(const uint8_t *b, size_t hlen, uint64_t seglen, struct fr_geo *g, char *why, size_t whylen)
{
	if (hlen < FR_HEADER_SIZE || seglen < FR_HEADER_SIZE) {
		say(why, whylen, "data segment of %" PRIu64 " bytes is shorter than its header",
		    hlen < seglen ? (uint64_t)hlen : seglen);
		return FR_ERR_CORRUPT;
	}
	uint64_t magic = fr_le64(b + D_MAGIC);
	if (magic != FR_MAGIC_DATA) {
		say(why, whylen, "data segment magic %#018" PRIx64 ": not a framering data segment", magic);
		return FR_ERR_INCOMPATIBLE;
	}
	uint32_t v = fr_le32(b + D_VERSION);
	if (v != FR_LAYOUT_VERSION) {
		say(why, whylen, "data segment layout version %" PRIu32 ", this library reads %d", v, FR_LAYOUT_VERSION);
		return FR_ERR_INCOMPATIBLE;
	}
	uint32_t hs = fr_le32(b + D_HEADER_SIZE);
	if (hs != FR_HEADER_SIZE) {
		say(why, whylen, "data segment header size %" PRIu32, hs);
		return FR_ERR_INCOMPATIBLE;
	}
	uint32_t mc = fr_le32(b + D_MAX_CONSUMERS);
	if (mc != FR_MAX_CONSUMERS) {
		say(why, whylen, "data segment for %" PRIu32 " consumers", mc);
		return FR_ERR_INCOMPATIBLE;
	}
	uint32_t slots = fr_le32(b + D_SLOT_COUNT), index_count = fr_le32(b + D_INDEX_COUNT);
	uint64_t capacity = fr_le64(b + D_SLOT_CAPACITY);
	struct fr_geo want;
	if (fr__geometry(slots, index_count, capacity, &want) != 0) {
		say(why, whylen, "data segment of %" PRIu32 " slots of %" PRIu64 " bytes, index %" PRIu32, slots, capacity,
		    index_count);
		return FR_ERR_CORRUPT;
	}
	uint32_t quota = fr_le32(b + D_HOLD_QUOTA);
	if (quota < 1 || quota > slots) {
		say(why, whylen, "hold quota %" PRIu32 " for %" PRIu32 " slots", quota, slots);
		return FR_ERR_CORRUPT;
	}
	uint64_t hb = fr_le64(b + D_HEARTBEAT_PERIOD_NS);
	if (hb == 0 || hb > FR_MAX_HEARTBEAT_NS) {
		say(why, whylen, "heartbeat period %" PRIu64 " ns", hb);
		return FR_ERR_CORRUPT;
	}
	if (fr_le64(b + D_DESC_OFFSET) != want.desc_off || fr_le64(b + D_INDEX_OFFSET) != want.index_off ||
	    fr_le64(b + D_PAYLOAD_OFFSET) != want.payload_off || fr_le64(b + D_DATA_SIZE) != want.data_size ||
	    fr_le64(b + D_CONTROL_SIZE) != want.control_size) {
		say(why, whylen, "data segment region offsets disagree with its counts");
		return FR_ERR_CORRUPT;
	}
	if (want.data_size > seglen) {
		say(why, whylen, "data layout needs %" PRIu64 " bytes, the segment has %" PRIu64, want.data_size, seglen);
		return FR_ERR_CORRUPT;
	}
	want.epoch = fr_le64(b + D_EPOCH);
	want.producer_pid = fr_le32(b + D_PRODUCER_PID);
	want.flags = fr_le32(b + D_FLAGS);
	want.hold_quota = quota;
	want.heartbeat_ns = hb;
	uint64_t ev = fr_le64(b + D_EVICT_AFTER_NS);
	want.evict_after_ns = ev > (1ull << 62) ? (1ull << 62) : ev;
	*g = want;
	return 0;
}

int fr__decode_control_header(const uint8_t *b, size_t hlen, uint64_t seglen, const struct fr_geo *g, char *why,
			      size_t whylen)
{
	if (hlen < FR_HEADER_SIZE || seglen < FR_HEADER_SIZE) {
		say(why, whylen, "control segment of %" PRIu64 " bytes is shorter than its header",
		    hlen < seglen ? (uint64_t)hlen : seglen);
		return FR_ERR_CORRUPT;
	}
	uint64_t magic = fr_le64(b + C_MAGIC);
	if (magic != FR_MAGIC_CONTROL) {
		say(why, whylen, "control segment magic %#018" PRIx64 ": not a framering control segment", magic);
		return FR_ERR_INCOMPATIBLE;
	}
	uint32_t v = fr_le32(b + C_VERSION);
	if (v != FR_LAYOUT_VERSION) {
		say(why, whylen, "control segment layout version %" PRIu32 ", this library reads %d", v,
		    FR_LAYOUT_VERSION);
		return FR_ERR_INCOMPATIBLE;
	}
	if (fr_le32(b + C_HEADER_SIZE) != FR_HEADER_SIZE || fr_le32(b + C_SLOT_COUNT) != g->slots ||
	    fr_le32(b + C_MAX_CONSUMERS) != FR_MAX_CONSUMERS || fr_le64(b + C_HOLDS_OFFSET) != g->holds_off ||
	    fr_le64(b + C_TABLE_OFFSET) != g->table_off || fr_le64(b + C_CONTROL_SIZE) != g->control_size) {
		say(why, whylen, "control segment header does not match the data segment");
		return FR_ERR_CORRUPT;
	}
	uint64_t e = fr_le64(b + C_EPOCH);
	if (e != g->epoch) {
		say(why, whylen, "control segment epoch %#" PRIx64 ", data segment %#" PRIx64, e, g->epoch);
		return FR_ERR_CORRUPT;
	}
	if (g->control_size > seglen) {
		say(why, whylen, "control layout needs %" PRIu64 " bytes, the segment has %" PRIu64, g->control_size,
		    seglen);
		return FR_ERR_CORRUPT;
	}
	return 0;
}

int fr__decode_welcome(const uint8_t *b, size_t n, struct fr_welcome *w, char *why, size_t whylen)
{
	if (n != FR_MSG_SIZE) {
		say(why, whylen, "welcome of %zu bytes", n);
		return FR_ERR_PROTOCOL;
	}
	uint64_t magic = fr_le64(b);
	if (magic != FR_MAGIC_WELCOME) {
		say(why, whylen, "welcome magic %#018" PRIx64 ": not a framering producer", magic);
		return FR_ERR_INCOMPATIBLE;
	}
	uint32_t v = fr_le32(b + 8);
	if (v != FR_LAYOUT_VERSION) {
		say(why, whylen, "the producer speaks layout version %" PRIu32 ", this library %d", v, FR_LAYOUT_VERSION);
		return FR_ERR_INCOMPATIBLE;
	}
	w->status = fr_le32(b + 12);
	w->entry = fr_le32(b + 16);
	w->epoch = fr_le64(b + 24);
	w->data_file_size = fr_le64(b + 32);
	w->control_file_size = fr_le64(b + 40);
	if (w->status == STATUS_OK && w->entry != FR_NO_ENTRY && w->entry >= FR_MAX_CONSUMERS) {
		say(why, whylen, "welcome names table entry %" PRIu32, w->entry);
		return FR_ERR_PROTOCOL;
	}
	return 0;
}

int fr__decode_note(const uint8_t *b, size_t n, uint32_t *kind, uint32_t *reason)
{
	if (n != FR_MSG_SIZE || fr_le64(b) != FR_MAGIC_NOTE)
		return FR_ERR_PROTOCOL;
	*kind = fr_le32(b + 8);
	*reason = fr_le32(b + 12);
	return 0;
}

void fr__encode_hello(uint8_t b[FR_MSG_SIZE], uint32_t role, uint32_t mode, uint32_t flags, const char *name, uint64_t start)
{
	memset(b, 0, FR_MSG_SIZE);
	fr_put64(b, FR_MAGIC_HELLO);
	fr_put32(b + 8, FR_LAYOUT_VERSION);
	fr_put32(b + 12, role);
	fr_put32(b + 16, mode);
	fr_put32(b + 20, flags);
	if (name != NULL)
		memcpy(b + 24, name, strnlen(name, FR_NAME_LEN));
	fr_put64(b + 56, start);
}

void fr__encode_bye(uint8_t b[FR_MSG_SIZE])
{
	memset(b, 0, FR_MSG_SIZE);
	fr_put64(b, FR_MAGIC_BYE);
}

int fr__valid_name(const char *name)
{
	size_t n = strnlen(name, FR_NAME_LEN + 1);
	if (n > FR_NAME_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
			return 0;
	return 1;
}

static int ring_char(char c, int first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return 1;
	return !first && (c == '.' || c == '_' || c == '-');
}

int fr__valid_ring_name(const char *name)
{
	size_t n = strnlen(name, 65);
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!ring_char(name[i], i == 0))
			return 0;
	return 1;
}
