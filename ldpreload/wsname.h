/* Workspace name -> loopback address: the rule of spec/routing.md, for the shim and its tests. */
#ifndef CMUX_WSNAME_H
#define CMUX_WSNAME_H

#include <stddef.h>
#include <stdint.h>

/* Maps a workspace name (len bytes, not NUL-terminated necessarily) to its number N (1..65535).
 * Returns 0 and sets *n on success; returns -1 and sets *why to a static reason when refused.
 * Pure and async-signal-safe: no allocation, no locale, no libc state. */
int cmux_ws_number(const char *name, size_t len, unsigned *n, const char **why);

/* The IPv4 address 127.18.(N>>8).(N&255) in host byte order. */
static inline uint32_t cmux_ws_addr_host(unsigned n)
{
    return (UINT32_C(127) << 24) | (UINT32_C(18) << 16) | (uint32_t)(n & 0xFFFFu);
}

#endif
