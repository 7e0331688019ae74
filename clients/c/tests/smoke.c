/* smoke: compiled against an installed libframering (make install-smoke)
 * with pkg-config, shared and static: the header, the library and the
 * pkg-config file fit together. */
#include <stdio.h>
#include <string.h>

#include <framering.h>

int main(void)
{
	fr_options o;
	fr_options_init(&o);
	o.socket_path = "/nonexistent/framering-smoke.sock";
	fr_ring *r;
	int rc = fr_attach(&o, &r);
	if (fr_abi_version() != FR_ABI_VERSION || rc != FR_ERR_NO_SUCH_RING || strcmp(fr_error_name(rc), "FR_ERR_NO_SUCH_RING") != 0) {
		fprintf(stderr, "smoke: abi %u, attach %s\n", fr_abi_version(), fr_error_name(rc));
		return 1;
	}
	printf("smoke: ok (%s)\n", fr_strerror(rc));
	return 0;
}
