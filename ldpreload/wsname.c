/* The workspace name rule (spec/routing.md). Deliberately free of ctype.h: the C locale functions
 * could accept non-ASCII letters in some locales, and the rule says ASCII only. */
#include "wsname.h"

#define FNV32_OFFSET 0x811C9DC5u
#define FNV32_PRIME 0x01000193u

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_allowed(char c)
{
    return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-' || c == '/';
}
static unsigned char to_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* 32-bit FNV-1a of the lower-cased bytes, low 16 bits kept. */
static unsigned fnv1a_low16(const char *s, size_t len)
{
    uint32_t h = FNV32_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= to_lower((unsigned char)s[i]);
        h *= FNV32_PRIME;
    }
    return h & 0xFFFFu;
}

/* The trailing decimal number of s, or -1 if out of 1..65535. Saturates instead of overflowing
 * so that a long digit string such as 4294967297 can never wrap around to a small number. */
static long trailing_number(const char *digits, size_t len)
{
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        v = v * 10 + (unsigned long)(digits[i] - '0');
        if (v > 65535) return -1;
    }
    return v == 0 ? -1 : (long)v;
}

int cmux_ws_number(const char *name, size_t len, unsigned *n, const char **why)
{
    const char *s = name;
    while (len > 0 && is_blank(s[0])) { s++; len--; }
    while (len > 0 && is_blank(s[len - 1])) len--;
    if (len == 0) { *why = "empty name"; return -1; }

    size_t base = 0; /* start of the part after the last '/' */
    for (size_t i = 0; i < len; i++) {
        if (!is_allowed(s[i])) {
            *why = "character outside [A-Za-z0-9._/-]";
            return -1;
        }
        if (s[i] == '/') base = i + 1;
    }
    s += base;
    len -= base;
    if (len == 0) { *why = "empty name after the last '/'"; return -1; }

    size_t d = len;
    while (d > 0 && is_digit(s[d - 1])) d--;
    if (d < len) {
        long v = trailing_number(s + d, len - d);
        if (v < 0) { *why = "trailing number outside 1..65535"; return -1; }
        *n = (unsigned)v;
    } else {
        *n = fnv1a_low16(s, len);
    }
    return 0;
}
