/* The escaping of untrusted text for terminals and logs (src/util/escape.c). */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/escape.h"

static void check(const char *in, size_t n, const char *want)
{
    char *got = mg_escape_dup(in, n);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(mg_escape_needed(in, n), strcmp(got, in) != 0 || strlen(in) != n);
    free(got);
}

#define CHECK(lit, want) check(lit, sizeof lit - 1, want)

static void escapes(void **state)
{
    (void)state;
    CHECK("layers.0.weight", "layers.0.weight");
    CHECK("", "");
    CHECK("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x99\x82", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x99\x82");
    /* Terminal sequences and fake lines. */
    CHECK("w\x1b]0;owned\x07\nverified x\r", "w\\x1b]0;owned\\x07\\nverified x\\r");
    CHECK("a\tb\\c\x7f", "a\\tb\\\\c\\x7f");
    CHECK("nul\0x", "nul\\x00x");
    /* C1 controls (CSI U+009B, NEL U+0085) and bidi controls (RLO U+202E, RLI U+2067). */
    CHECK("\xc2\x9b" "31m\xc2\x85", "\\u009b31m\\u0085");
    CHECK("txt.\xe2\x80\xae" "exe\xe2\x81\xa7" "x", "txt.\\u202eexe\\u2067x");
    CHECK("\xe2\x80\xa8\xe2\x81\xa9\xd8\x9c\xe2\x80\x8f", "\\u2028\\u2069\\u061c\\u200f");
    CHECK("\xc2\xa0", "\xc2\xa0"); /* NBSP is printable */
    /* Invalid UTF-8: lone bytes, truncated, overlong, surrogate. */
    CHECK("\xff\xfe", "\\xff\\xfe");
    CHECK("ab\xe2\x80", "ab\\xe2\\x80");
    CHECK("\xc0\xaf", "\\xc0\\xaf");
    CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");
}

static void cut_between_escapes(void **state)
{
    (void)state;
    char out[8];
    /* "ab\x1b" -> "ab\\x1b" (6 bytes) fits in 8; "\x1b\x1b" needs 8 + NUL: cut after one. */
    assert_int_equal(mg_escape(out, sizeof out, "ab\x1b", 3), 6);
    assert_string_equal(out, "ab\\x1b");
    assert_int_equal(mg_escape(out, sizeof out, "\x1b\x1b", 2), 8);
    assert_string_equal(out, "\\x1b");
    assert_int_equal(mg_escape(out, 3, "\xe4\xb8\xad", 3), 3);
    assert_string_equal(out, "");
    assert_int_equal(mg_escape(NULL, 0, "\\", 1), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes),
        cmocka_unit_test(cut_between_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
