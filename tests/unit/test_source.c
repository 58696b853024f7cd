/* Source canonicalisation: lexical path normalisation and URL normalisation (SPEC §4.2). */
#include <stdlib.h>
#include <string.h>

#include "source.h"
#include "testutil.h"

static void expect_path(const char *in, const char *base, const char *want, bool dots)
{
    char *out = NULL;
    mg_source_info info;
    mg_error err;
    assert_int_equal(mg_source_normalize_path(in, base, &out, &info, &err), MG_OK);
    assert_string_equal(out, want);
    assert_int_equal(info.dot_segments, dots);
    free(out);
}

static void paths(void **state)
{
    (void)state;
    expect_path("/a/b/c", NULL, "/a/b/c", false);
    expect_path("/a//b///c", NULL, "/a/b/c", false);
    expect_path("/a/./b", NULL, "/a/b", true);
    expect_path("/a/b/../c", NULL, "/a/c", true);
    expect_path("/../../x", NULL, "/x", true);
    expect_path("/a/b/", NULL, "/a/b/", false);
    expect_path("/", NULL, "/", false);
    expect_path("m.safetensors", "/opt/models", "/opt/models/m.safetensors", false);
    expect_path("sub/../m", "/opt", "/opt/m", true);
    /* dot segments of the base directory are not the path's own */
    expect_path("m", "/opt/./x", "/opt/x/m", false);
    char *out;
    mg_source_info info;
    mg_error err;
    assert_int_equal(mg_source_normalize_path("", NULL, &out, &info, &err), MG_E_USAGE);
    assert_int_equal(mg_source_normalize_path("/a/*.bin", NULL, &out, &info, &err), MG_OK);
    assert_true(info.wildcard);
    free(out);
}

static void expect_url(const char *in, const char *want, bool dots)
{
    char *out = NULL;
    mg_source_info info;
    mg_error err;
    mg_status s = mg_source_normalize_url(in, &out, &info, &err);
    if (s != MG_OK)
        fail_msg("%s: %s", in, err.message);
    assert_string_equal(out, want);
    assert_int_equal(info.dot_segments, dots);
    assert_true(info.remote);
    free(out);
}

static void expect_bad_url(const char *in)
{
    char *out = NULL;
    mg_source_info info;
    mg_error err;
    assert_int_equal(mg_source_normalize_url(in, &out, &info, &err), MG_E_UNTRUSTED);
    assert_null(out);
}

static void urls(void **state)
{
    (void)state;
    expect_url("https://Models.Example.COM/a/B", "https://models.example.com/a/B", false);
    expect_url("HTTPS://h.example.com:443/x", "https://h.example.com/x", false);
    expect_url("https://h.example.com:0443/x", "https://h.example.com/x", false);
    expect_url("https://h.example.com:8443/x", "https://h.example.com:8443/x", false);
    expect_url("https://h.example.com", "https://h.example.com/", false);
    expect_url("https://h.example.com:/x", "https://h.example.com/x", false);
    expect_url("https://h/%7euser/%41%2f%2F", "https://h/~user/A%2F%2F", false);
    expect_url("https://h/a/./b", "https://h/a/./b", true);
    expect_url("https://h/a/../b", "https://h/a/../b", true);
    expect_url("https://h/%2e%2e/b", "https://h/../b", true);
    expect_url("https://h/a..b/.c", "https://h/a..b/.c", false);
    expect_url("https://[::1]:8443/m", "https://[::1]:8443/m", false);
    expect_url("https://h/dir/", "https://h/dir/", false);
    expect_bad_url("http://h/x");
    expect_bad_url("ftp://h/x");
    expect_bad_url("https://user@h/x");
    expect_bad_url("https://u:p@h/x");
    expect_bad_url("https://h/x?y=1");
    expect_bad_url("https://h/x#frag");
    expect_bad_url("https://h/a b");
    expect_bad_url("https://h/%zz");
    expect_bad_url("https://h/%4");
    expect_bad_url("https:///x");
    expect_bad_url("https://h:12x/x");
    expect_bad_url("https://h:123456/x");
    expect_bad_url("https://[::1/x");
    expect_bad_url("https://h/\x01");
}

static void equality(void **state)
{
    (void)state;
    assert_true(mg_source_equal("/a/b/", "/a/b"));
    assert_true(mg_source_equal("/a/b", "/a/b"));
    assert_false(mg_source_equal("/a/b", "/a/bc"));
    assert_false(mg_source_equal("/a/b//", "/a/b"));
    assert_true(mg_source_is_url("https://x"));
    assert_false(mg_source_is_url("/https://x"));
    assert_false(mg_source_is_url("://x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths),
        cmocka_unit_test(urls),
        cmocka_unit_test(equality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
