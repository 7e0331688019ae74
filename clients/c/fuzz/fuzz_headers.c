/*
 * fuzz_headers: libFuzzer target for the segment header decoders
 * (src/decode.c). Input: a data header page, then a control header page
 * (missing bytes are zero), then two u64 segment sizes. Asserts: no crash,
 * no sanitizer report, and an accepted geometry describes regions inside
 * the segments and satisfies docs/LAYOUT.md section 5.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framering.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	static uint8_t d[FR_HEADER_SIZE], c[FR_HEADER_SIZE];
	memset(d, 0, sizeof d);
	memset(c, 0, sizeof c);
	/* The interesting words are in the first 0x80 bytes of each header. */
	size_t take = n < 0x80 ? n : 0x80;
	memcpy(d, in, take);
	in += take;
	n -= take;
	take = n < 0x40 ? n : 0x40;
	memcpy(c, in, take);
	in += take;
	n -= take;
	uint64_t dlen = 0, clen = 0;
	if (n >= 8)
		dlen = fr_le64(in), in += 8, n -= 8;
	if (n >= 8)
		clen = fr_le64(in);
	struct fr_geo g;
	char why[200];
	int rc = fr__decode_data_header(d, sizeof d, dlen, &g, why, sizeof why);
	if (rc != 0) {
		if (rc != FR_ERR_CORRUPT && rc != FR_ERR_INCOMPATIBLE)
			abort();
		return 0;
	}
	if (g.slots < 1 || g.slots > FR_MAX_SLOTS || g.data_size > dlen || g.hold_quota < 1 || g.hold_quota > g.slots ||
	    g.payload_off + (uint64_t)g.slots * g.capacity != g.data_size || g.index_count < g.slots ||
	    g.capacity % FR_PAGE != 0 || g.heartbeat_ns == 0)
		abort();
	rc = fr__decode_control_header(c, sizeof c, clen, &g, why, sizeof why);
	if (rc == 0 && (g.control_size > clen || g.table_off + 64ull * FR_ENTRY_SIZE > g.control_size))
		abort();
	return 0;
}
