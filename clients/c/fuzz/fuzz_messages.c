/*
 * fuzz_messages: libFuzzer target for the message decoders (welcome and
 * note) and the name checks. Asserts: no crash, and an accepted welcome
 * with status 0 names a table entry below 64 or none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framering.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	struct fr_welcome w;
	int rc = fr__decode_welcome(in, n, &w, NULL, 0);
	if (rc == 0 && w.status == 0 && w.entry != FR_NO_ENTRY && w.entry >= FR_MAX_CONSUMERS)
		abort();
	if (rc != 0 && rc != FR_ERR_PROTOCOL && rc != FR_ERR_INCOMPATIBLE)
		abort();
	uint32_t kind, reason;
	fr__decode_note(in, n, &kind, &reason);
	char name[80];
	size_t k = n < sizeof name - 1 ? n : sizeof name - 1;
	memcpy(name, in, k);
	name[k] = '\0';
	fr__valid_name(name);
	fr__valid_ring_name(name);
	return 0;
}
