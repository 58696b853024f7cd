/* Hugging Face layouts: which folders are hub snapshots, which symlink targets are the one
 * allowed step into blobs/, and how ignore patterns match. */
#include <string.h>

#include "hub.h"
#include "testutil.h"

static void snapshots(void **state)
{
    (void)state;
    assert_true(mg_hub_is_snapshot("/c/hub/models--org--name/snapshots/abc123/"));
    assert_true(mg_hub_is_snapshot("/models--a/snapshots/r/"));
    assert_true(mg_hub_is_snapshot("/x/datasets--o--d/snapshots/main/"));
    assert_false(mg_hub_is_snapshot("/c/hub/models--org--name/snapshots/abc123"));
    assert_false(mg_hub_is_snapshot("/c/hub/models--/snapshots/abc123/"));
    assert_false(mg_hub_is_snapshot("/c/hub/models--org--name/snapshot/abc123/"));
    assert_false(mg_hub_is_snapshot("/c/hub/org--name/snapshots/abc123/"));
    assert_false(mg_hub_is_snapshot("/snapshots/abc123/"));
    assert_false(mg_hub_is_snapshot("https://h/models--a--b/snapshots/r/"));
    assert_false(mg_hub_is_snapshot(NULL));
}

static void link_targets(void **state)
{
    (void)state;
    assert_true(mg_hub_link_target_ok("../../blobs/0123abcd", 0));
    assert_true(mg_hub_link_target_ok("../../../blobs/x", 1));
    assert_false(mg_hub_link_target_ok("../../../blobs/x", 0));
    assert_false(mg_hub_link_target_ok("../blobs/x", 0));
    assert_false(mg_hub_link_target_ok("/abs/blobs/x", 0));
    assert_false(mg_hub_link_target_ok("../../blobs/", 0));
    assert_false(mg_hub_link_target_ok("../../blobs/..", 0));
    assert_false(mg_hub_link_target_ok("../../blobs/a/b", 0));
    assert_false(mg_hub_link_target_ok("../../refs/main", 0));
    assert_false(mg_hub_link_target_ok("../../blobs/a\\b", 0));
    assert_true(mg_hub_blob_is_sha256(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(mg_hub_blob_is_sha256(
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
    assert_false(mg_hub_blob_is_sha256("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
}

static void ignore_patterns(void **state)
{
    (void)state;
    /* The defaults, at the top and below. */
    assert_true(mg_ignore_match(NULL, 0, ".git", true));
    assert_true(mg_ignore_match(NULL, 0, ".git/objects/ab", false));
    assert_false(mg_ignore_match(NULL, 0, ".git", false)); /* a gitlink file is not a folder */
    assert_true(mg_ignore_match(NULL, 0, ".gitattributes", false));
    assert_true(mg_ignore_match(NULL, 0, "sub/.gitattributes", false));
    assert_true(mg_ignore_match(NULL, 0, ".cache/huggingface/download/x.metadata", false));
    assert_false(mg_ignore_match(NULL, 0, "sub/.cache/huggingface/x", false));
    assert_false(mg_ignore_match(NULL, 0, ".cache/other", false));
    assert_false(mg_ignore_match(NULL, 0, "model.safetensors", false));
    char *pats[] = {"*.md", "logs/", "docs/*.txt"};
    assert_true(mg_ignore_match(pats, 3, "README.md", false));
    assert_true(mg_ignore_match(pats, 3, "a/b/NOTES.md", false));
    assert_true(mg_ignore_match(pats, 3, "logs/run/1.txt", false));
    assert_true(mg_ignore_match(pats, 3, "x/logs/1.txt", false));
    assert_false(mg_ignore_match(pats, 3, "logs", false));
    assert_true(mg_ignore_match(pats, 3, "docs/a.txt", false));
    assert_false(mg_ignore_match(pats, 3, "docs/sub/a.txt", false));
    assert_false(mg_ignore_match(pats, 3, "x/docs/a.txt", false));
    assert_null(mg_ignore_pattern_problem("*.md"));
    assert_null(mg_ignore_pattern_problem("a/b/"));
    assert_non_null(mg_ignore_pattern_problem(""));
    assert_non_null(mg_ignore_pattern_problem("/a"));
    assert_non_null(mg_ignore_pattern_problem("a/../b"));
    assert_non_null(mg_ignore_pattern_problem("./a"));
    assert_non_null(mg_ignore_pattern_problem("a//b"));
    assert_non_null(mg_ignore_pattern_problem("a\\b"));
    assert_non_null(mg_ignore_pattern_problem("a\nb"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshots),
        cmocka_unit_test(link_targets),
        cmocka_unit_test(ignore_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
