//go:build cgo

/*
 * The SDK's sources live in csdk/ so that the sanitizer test can compile
 * them on their own with gcc; cgo compiles only the .c files of the package
 * directory, so this file includes them.
 */
#include "csdk/frsdk.c"
