/*
 * internal.h - libframering's private declarations: the layout of
 * docs/LAYOUT.md v2 (offsets, sizes, magics), the validated geometry, and
 * the pure decoders of headers and messages (decode.c), which take plain
 * bytes so that they can be fuzzed (fuzz/).
 *
 * Nothing here is exported from the shared library (-fvisibility=hidden).
 */
#ifndef FRAMERING_INTERNAL_H
#define FRAMERING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "framering rings are little-endian; shared words are accessed atomically (LAYOUT.md 2)"
#endif
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "libframering supports amd64 and arm64, as the Go implementation does (LAYOUT.md 10.7)"
#endif

/* ---- Sizes (LAYOUT.md 2-5) ---- */
#define FR_PAGE 4096u
#define FR_HEADER_SIZE 4096u
#define FR_DESC_SIZE 128u
#define FR_INDEX_ENTRY_SIZE 8u
#define FR_HOLD_SIZE 64u
#define FR_ENTRY_SIZE 256u
#define FR_MAX_CONSUMERS 64u
#define FR_MSG_SIZE 64u
#define FR_NAME_LEN 32u
#define FR_MAX_SLOTS 65535u
#define FR_MAX_INDEX (1u << 24)
#define FR_MAX_CAPACITY (1ull << 30)
#define FR_MAX_SEQ ((1ull << 48) - 1)
#define FR_NO_ENTRY 0xFFFFFFFFu
/* The Go reader refuses a heartbeat period above an hour (ringbuf/layout.go). */
#define FR_MAX_HEARTBEAT_NS 3600000000000ull

/* ---- Magics: the little-endian u64 of the ASCII strings ---- */
#define FR_MAGIC_DATA 0x41544144524D5246ull    /* "FRMRDATA" */
#define FR_MAGIC_CONTROL 0x4C525443524D5246ull /* "FRMRCTRL" */
#define FR_MAGIC_HELLO 0x4F4C4548524D5246ull   /* "FRMRHELO" */
/* Hello flags (offset 20, docs/LAYOUT.md 6.2). */
#define FR_HELLO_CHAIN_WAKE 1u /* we pass futex wake-ups on (9.5) */
/* How many more sleepers a chaining waiter wakes (9.5). */
#define FR_CHAIN_FANOUT 2
#define FR_MAGIC_WELCOME 0x434C4557524D5246ull /* "FRMRWELC" */
#define FR_MAGIC_NOTE 0x45544F4E524D5246ull    /* "FRMRNOTE" */
#define FR_MAGIC_BYE 0x21455942524D5246ull     /* "FRMRBYE!" */

/* ---- Data header (3.1) ---- */
#define D_MAGIC 0x00
#define D_VERSION 0x08
#define D_HEADER_SIZE 0x0C
#define D_SLOT_COUNT 0x10
#define D_INDEX_COUNT 0x14
#define D_SLOT_CAPACITY 0x18
#define D_DESC_OFFSET 0x20
#define D_INDEX_OFFSET 0x28
#define D_PAYLOAD_OFFSET 0x30
#define D_DATA_SIZE 0x38
#define D_EPOCH 0x40
#define D_PRODUCER_PID 0x48
#define D_MAX_CONSUMERS 0x4C
#define D_CONTROL_SIZE 0x50
#define D_CREATED_UNIX_NS 0x58
#define D_FLAGS 0x60
#define D_HOLD_QUOTA 0x64
#define D_HEARTBEAT_PERIOD_NS 0x68
#define D_EVICT_AFTER_NS 0x70
#define D_PUBLISHED 0x80
#define D_STATE 0xC0
#define D_SOURCE_STATE 0xC4
#define D_WAKE 0x100
#define D_EVICTIONS 0x140
#define D_DETACHES 0x148
#define D_RECLAIMS 0x150
#define D_RECLAIMED_HOLDS 0x158
#define D_REVOKED_HOLDS 0x160
#define D_START_MONO_NS 0x168
#define D_HEARTBEAT_NS 0x170
#define D_COPIES 0x178
#define D_DROPS 0x200
#define D_DROP_CAUSES 64u

#define RING_STATE_RUNNING 1u
#define RING_STATE_CLOSED 2u
#define FLAG_HUGE_PAGES 1u

/* ---- Descriptor (3.2), relative to the descriptor ---- */
#define DS_GEN 0x00
#define DS_SEQ 0x08
#define DS_FRAME_ID 0x10
#define DS_TIMESTAMP 0x18
#define DS_WIDTH 0x20
#define DS_HEIGHT 0x24
#define DS_STRIDE 0x28
#define DS_FORMAT 0x2C
#define DS_LENGTH 0x30
#define DS_FLAGS 0x38
#define DS_DEVICE_TIMESTAMP 0x40
#define DS_ORIGIN_EPOCH 0x48
#define DS_ORIGIN_SEQ 0x50
#define DS_PUBLISH_NS 0x58
#define DS_DROPS_BEFORE 0x60
#define DS_DROPS_WORDS 4u

/* ---- Control header (4.1) ---- */
#define C_MAGIC 0x00
#define C_VERSION 0x08
#define C_HEADER_SIZE 0x0C
#define C_SLOT_COUNT 0x10
#define C_MAX_CONSUMERS 0x14
#define C_HOLDS_OFFSET 0x18
#define C_TABLE_OFFSET 0x20
#define C_CONTROL_SIZE 0x28
#define C_EPOCH 0x30
#define C_WAITERS 0x40
#define C_ATTACHED 0x80

/* ---- Consumer table entry (4.3), relative to the entry ---- */
#define E_STATE 0x00
#define E_MODE 0x04
#define E_CURSOR 0x40
#define E_DELIVERED 0x48
#define E_SKIPPED 0x50
#define E_MISSED 0x58
#define E_HELD 0x60
#define E_LAST_SEQ 0x68
#define E_LATENCY_NS 0x70
#define E_REVOKED_SEEN 0x78
#define E_EVICT_REASON 0x88

#define ENTRY_ACTIVE 1u
#define ENTRY_EVICTED 2u

/* ---- Messages (6.2) ---- */
#define STATUS_OK 0u
#define STATUS_INCOMPATIBLE 1u
#define STATUS_DENIED 2u
#define STATUS_FULL 3u
#define STATUS_BAD_REQUEST 4u
#define STATUS_CLOSING 5u
#define NOTE_EVICTED 1u
#define NOTE_CLOSING 2u

/* The validated shape of a ring (LAYOUT.md 5, 6.3 step 10): kept in private
 * memory, never re-read from the headers. */
struct fr_geo {
	uint32_t slots, index_count;
	uint64_t capacity;
	uint64_t desc_off, index_off, payload_off, data_size;
	uint64_t holds_off, table_off, control_size;
	uint64_t epoch;
	uint32_t producer_pid, flags;
	uint32_t hold_quota;
	uint64_t heartbeat_ns, evict_after_ns;
};

struct fr_welcome {
	uint32_t status, entry;
	uint64_t epoch, data_file_size, control_file_size;
};

/* Little-endian loads and stores on plain bytes. */
static inline uint32_t fr_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fr_le64(const uint8_t *p) { return (uint64_t)fr_le32(p) | (uint64_t)fr_le32(p + 4) << 32; }
static inline void fr_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fr_put64(uint8_t *p, uint64_t v)
{
	fr_put32(p, (uint32_t)v);
	fr_put32(p + 4, (uint32_t)(v >> 32));
}

/* fr__geometry derives every offset from the counts (section 5), after
 * checking them against its constraints. Returns 0 or FR_ERR_CORRUPT. */
int fr__geometry(uint32_t slots, uint32_t index_count, uint64_t capacity, struct fr_geo *g);

/* fr__decode_data_header validates the data header b (hlen bytes of it
 * available; seglen the segment's real size) in the order of LAYOUT.md 6.3
 * step 7 and the Go reader (ringbuf.decodeDataHeader), and fills *g. On
 * failure it returns FR_ERR_INCOMPATIBLE or FR_ERR_CORRUPT and writes why
 * to why (whylen bytes; may be NULL). */
int fr__decode_data_header(const uint8_t *b, size_t hlen, uint64_t seglen, struct fr_geo *g, char *why, size_t whylen);

/* fr__decode_control_header validates the control header against the data
 * geometry (6.3 step 9). Returns 0, FR_ERR_INCOMPATIBLE or FR_ERR_CORRUPT. */
int fr__decode_control_header(const uint8_t *b, size_t hlen, uint64_t seglen, const struct fr_geo *g, char *why,
			      size_t whylen);

/* fr__decode_welcome decodes a 64-byte welcome. Returns 0,
 * FR_ERR_INCOMPATIBLE (magic, version) or FR_ERR_PROTOCOL (size, an entry
 * out of range with status 0). */
int fr__decode_welcome(const uint8_t *b, size_t n, struct fr_welcome *w, char *why, size_t whylen);

/* fr__decode_note decodes a 64-byte note: 0 and its kind and reason, or
 * FR_ERR_PROTOCOL. */
int fr__decode_note(const uint8_t *b, size_t n, uint32_t *kind, uint32_t *reason);

/* fr__encode_hello writes a hello (name: at most 32 bytes, already checked). */
void fr__encode_hello(uint8_t b[FR_MSG_SIZE], uint32_t role, uint32_t mode, uint32_t flags, const char *name, uint64_t start);
void fr__encode_bye(uint8_t b[FR_MSG_SIZE]);

/* fr__guess_slot guesses the slot of frame seq (LAYOUT.md 9.1, "A guessed
 * slot") from hint = t << 16 | k, frame t having been in slot k (0: no
 * hint), with p loaded from published: slots go round in order while none
 * is held long, so frame seq is (seq - t) slots after k. It returns 1 and
 * *k, or 0 where no guess may be trusted: no hint, seq not after t, or
 * p - seq >= index_count - 1 (the index may have moved past seq: Publish
 * stores frame seq + index_count's entry before published; and a frame
 * it no longer addresses must be reported overwritten). */
int fr__guess_slot(uint64_t hint, uint64_t seq, uint64_t p, uint32_t slots, uint32_t index_count, uint32_t *k);

/* fr__valid_name reports whether a consumer name is at most 32 printable
 * ASCII bytes; fr__valid_ring_name whether a ring name matches
 * ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$. */
int fr__valid_name(const char *name);
int fr__valid_ring_name(const char *name);

#endif
