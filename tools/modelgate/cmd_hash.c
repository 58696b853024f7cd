/* hash: sha256sum-style lines, "HEX  FILE" (or the BSD --tag form), `-` for standard input,
 * and -c to check such a list. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "digest.h"
#include "internal.h"
#include "source.h"
#include "util/fsutil.h"
#include "util/hex.h"

#define SUMS_MAX_LINE 8192
#define SUMS_MAX_BYTES (64u << 20)

/* Open a file to hash: `-` is standard input; anything else as the library opens files (no
 * symlink on its path). Returns the fd or -1 with the error in `err`. */
static int open_input(const char *path, mg_error *err)
{
    if (strcmp(path, "-") == 0)
        return STDIN_FILENO;
    char *abs = NULL;
    mg_source_info info;
    mg_error_clear(err);
    if (mg_source_normalize_path(path, NULL, &abs, &info, err) != MG_OK)
        return -1;
    int fd = mg_open_nofollow(abs, O_RDONLY | O_NONBLOCK, NULL);
    int saved = errno;
    free(abs);
    if (fd < 0) {
        err->status = MG_E_IO;
        snprintf(err->message, sizeof err->message, "cannot open %.300s: %s", path,
                 saved == ELOOP ? "a symlink is on its path (refused; hash the real path)"
                                : strerror(saved));
        return -1;
    }
    return fd;
}

mg_status mg_cli_hash_fd(int fd, const char *what, mg_digest_alg alg, bool quiet, char hex[129],
                         uint64_t *size, mg_error *err)
{
    mg_error_clear(err);
    struct stat st;
    uint64_t total = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    mg_digest_ctx *ctx = NULL;
    mg_status s = mg_digest_new(alg, &ctx, err);
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = s == MG_OK ? malloc(CHUNK) : NULL;
    if (s == MG_OK && buf == NULL) {
        err->status = s = MG_E_LIMIT;
        snprintf(err->message, sizeof err->message, "out of memory");
    }
    mg_cli_progress_begin(NULL, quiet, "hashing");
    uint64_t done = 0;
    while (s == MG_OK) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            err->status = s = MG_E_IO;
            snprintf(err->message, sizeof err->message, "cannot read %.300s: %s", what,
                     strerror(errno));
        }
        if (n <= 0)
            break;
        s = mg_digest_update(ctx, buf, (size_t)n, err);
        done += (uint64_t)n;
        mg_cli_progress_update(done, total);
    }
    mg_cli_progress_end();
    uint8_t d[MG_DIGEST_MAX];
    if (s == MG_OK)
        s = mg_digest_final(ctx, d, err);
    if (s == MG_OK)
        mg_hex_encode(d, mg_digest_len(alg), hex);
    if (size != NULL)
        *size = done;
    free(buf);
    mg_digest_free(ctx);
    return s;
}

/* Hash a named file (or `-`), with progress on a terminal; `hex` gets lower-case hex. */
static mg_status hash_path(const char *path, mg_digest_alg alg, bool quiet, char hex[129],
                           mg_error *err)
{
    int fd = open_input(path, err);
    if (fd < 0)
        return err->status;
    mg_status s = mg_cli_hash_fd(fd, path, alg, quiet, hex, NULL, err);
    if (fd != STDIN_FILENO)
        close(fd);
    return s;
}

/* A file name as sha256sum prints it: a name that needs escaping (a newline or backslash, as
 * for sha256sum, and also any control, C1 or bidi character or byte that is not UTF-8, which
 * must never reach a terminal raw: util/escape.h) is printed escaped, the line starting with
 * a backslash. */
static void print_sum(const char *hex, const char *name, mg_digest_alg alg, bool tag)
{
    const char *shown = mg_cli_esc(name);
    if (strcmp(shown, name) != 0)
        fputc('\\', stdout);
    if (tag)
        printf("%s (%s) = %s\n", alg == MG_SHA512 ? "SHA512" : "SHA256", shown, hex);
    else
        printf("%s  %s\n", hex, shown);
}

static json_t *file_error(const char *name, const mg_error *err)
{
    return json_pack("{s:s?,s:o}", "file", name, "error", mg_cli_error_json(err, NULL, NULL));
}

static int hash_files(char **names, int count, mg_digest_alg alg, bool tag, bool json, bool quiet)
{
    static char *stdin_only[] = {"-"};
    if (count == 0) {
        names = stdin_only;
        count = 1;
    }
    int rc = 0;
    mg_error first;
    json_t *files = json ? json_array() : NULL;
    for (int i = 0; i < count; i++) {
        char hex[129];
        mg_error err;
        if (hash_path(names[i], alg, quiet, hex, &err) != MG_OK) {
            mg_cli_report(&err, false);
            if (rc == 0) {
                rc = (int)err.status;
                first = err;
            }
            if (files != NULL)
                json_array_append_new(files, file_error(names[i], &err));
            continue;
        }
        if (files != NULL)
            json_array_append_new(files, json_pack("{s:s?,s:s}", "file", names[i],
                                                   mg_digest_name(alg), hex));
        else if (!quiet)
            print_sum(hex, names[i], alg, tag);
    }
    if (files != NULL && (!quiet || rc != 0)) {
        json_t *doc = json_pack("{s:b,s:s,s:o}", "ok", rc == 0, "algorithm", mg_digest_name(alg),
                                "files", files);
        if (rc != 0)
            json_object_set_new(doc, "error", mg_cli_error_json(&first, NULL, NULL));
        if (mg_cli_print_json(doc) != 0 && rc == 0)
            rc = MG_E_LIMIT;
        json_decref(doc);
    } else {
        json_decref(files);
    }
    return fflush(stdout) == 0 ? rc : MG_E_IO;
}

/* ---- -c: check a list ----------------------------------------------------------------- */

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static int hexdigit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Undo the escaping of a name (only for lines that start with a backslash): sha256sum's
 * \\, \n, \r, and also what `hash` itself writes (util/escape.h): \t, \xNN (a byte) and
 * \uNNNN (a code point, written back as UTF-8). */
static bool unescape(const char *in, size_t n, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char tmp[4];
        size_t tl = 1;
        tmp[0] = (unsigned char)in[i];
        if (in[i] == '\\') {
            if (++i >= n)
                return false;
            char e = in[i];
            if (e == 'n' || e == 'r' || e == 't' || e == '\\') {
                tmp[0] = (unsigned char)(e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : '\\');
            } else if (e == 'x' && i + 2 < n && hexdigit(in[i + 1]) >= 0 &&
                       hexdigit(in[i + 2]) >= 0) {
                tmp[0] = (unsigned char)(hexdigit(in[i + 1]) * 16 + hexdigit(in[i + 2]));
                i += 2;
            } else if (e == 'u' && i + 4 < n) {
                unsigned cp = 0;
                for (int d = 1; d <= 4; d++) {
                    int h = hexdigit(in[i + d]);
                    if (h < 0)
                        return false;
                    cp = cp * 16 + (unsigned)h;
                }
                i += 4;
                if (cp < 0x80) {
                    tmp[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    tmp[0] = (unsigned char)(0xc0 | (cp >> 6));
                    tmp[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    tl = 2;
                } else {
                    tmp[0] = (unsigned char)(0xe0 | (cp >> 12));
                    tmp[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    tmp[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    tl = 3;
                }
            } else {
                return false;
            }
        }
        if (j + tl >= cap)
            return false;
        memcpy(out + j, tmp, tl);
        j += tl;
    }
    out[j] = '\0';
    return j > 0;
}

static bool lower_hex(const char *s, size_t n, mg_digest_alg *alg, char *out)
{
    if ((n != 64 && n != 128) || !all_hex(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    out[n] = '\0';
    *alg = n == 64 ? MG_SHA256 : MG_SHA512;
    return true;
}

/* One line of a sums file: GNU "HEX  NAME" / "HEX *NAME", or BSD "SHA256 (NAME) = HEX". */
bool mg_cli_parse_sums_line(const char *line, size_t len, sums_line *out)
{
    bool esc = len > 0 && line[0] == '\\';
    if (esc) {
        line++;
        len--;
    }
    if (len > 8 && (memcmp(line, "SHA256 (", 8) == 0 || memcmp(line, "SHA512 (", 8) == 0)) {
        bool is512 = line[3] == '5';
        const char *close = NULL;
        for (size_t i = len; i-- > 8;) {
            if (line[i] == ')' && i + 4 <= len && memcmp(line + i, ") = ", 4) == 0) {
                close = line + i;
                break;
            }
        }
        if (close == NULL)
            return false;
        const char *hex = close + 4;
        size_t hlen = len - (size_t)(hex - line);
        if (!lower_hex(hex, hlen, &out->alg, out->hex) || (out->alg == MG_SHA512) != is512)
            return false;
        const char *name = line + 8;
        size_t nlen = (size_t)(close - name);
        if (esc)
            return unescape(name, nlen, out->name, sizeof out->name);
        if (nlen == 0 || nlen >= sizeof out->name || memchr(name, '\0', nlen) != NULL)
            return false;
        memcpy(out->name, name, nlen);
        out->name[nlen] = '\0';
        return true;
    }
    size_t hlen = 0;
    while (hlen < len && line[hlen] != ' ')
        hlen++;
    if (hlen + 2 > len || !lower_hex(line, hlen, &out->alg, out->hex))
        return false;
    if (line[hlen + 1] != ' ' && line[hlen + 1] != '*')
        return false;
    const char *name = line + hlen + 2;
    size_t nlen = len - hlen - 2;
    if (esc)
        return unescape(name, nlen, out->name, sizeof out->name);
    if (nlen == 0 || nlen >= sizeof out->name || memchr(name, '\0', nlen) != NULL)
        return false;
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    return true;
}

/* Read a whole sums list (a file or `-`), capped. */
int mg_cli_read_text(const char *path, char **out, size_t *len, bool json)
{
    mg_error err;
    int fd = open_input(path, &err);
    if (fd < 0)
        return mg_cli_report(&err, json);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        if (fd != STDIN_FILENO)
            close(fd);
        return mg_cli_fail(MG_E_LIMIT, json, NULL, "out of memory");
    }
    int rc = 0;
    for (;;) {
        if (n == cap) {
            char *nb = cap < SUMS_MAX_BYTES ? realloc(buf, cap * 2 + 1) : NULL;
            if (nb == NULL) {
                rc = cap < SUMS_MAX_BYTES
                         ? mg_cli_fail(MG_E_LIMIT, json, NULL, "out of memory")
                         : mg_cli_fail(MG_E_LIMIT, json, NULL, "%s is larger than %u MiB", path,
                                       SUMS_MAX_BYTES >> 20);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            rc = mg_cli_fail(MG_E_IO, json, NULL, "cannot read %s: %s", path, strerror(errno));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int check_list(const char *list, bool json, bool quiet)
{
    char *text = NULL;
    size_t len = 0;
    int rc = mg_cli_read_text(list, &text, &len, json);
    if (rc != 0)
        return rc;
    json_t *files = json ? json_array() : NULL;
    size_t failed = 0, checked = 0, lineno = 0;
    mg_error first;
    memset(&first, 0, sizeof first);
    for (size_t pos = 0; pos < len && rc == 0;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        sums_line *sl = malloc(sizeof *sl);
        if (sl == NULL) {
            rc = mg_cli_fail(MG_E_LIMIT, json, NULL, "out of memory");
            break;
        }
        if (n > SUMS_MAX_LINE || !mg_cli_parse_sums_line(line, n, sl)) {
            free(sl);
            rc = mg_cli_fail(MG_E_FORMAT, json, NULL, "%s line %zu is not a sha256sum/sha512sum "
                             "line (HEX  NAME, or the --tag form ALG (NAME) = HEX)", list, lineno);
            break;
        }
        checked++;
        char hex[129];
        mg_error err;
        const char *result = "OK";
        bool mismatch = false;
        if (hash_path(sl->name, sl->alg, quiet, hex, &err) != MG_OK) {
            result = "FAILED open or read";
            if (err.status == MG_E_IO)
                err.status = MG_E_INTEGRITY; /* a listed file that is missing */
            mg_cli_report(&err, false);
        } else if (strcmp(hex, sl->hex) != 0) {
            result = "FAILED";
            mismatch = true;
            memset(&err, 0, sizeof err);
            err.status = MG_E_INTEGRITY;
            mg_strlcpy(err.file, sl->name, sizeof err.file);
            snprintf(err.message, sizeof err.message, "digest mismatch");
            snprintf(err.algorithm, sizeof err.algorithm, "%s", mg_digest_name(sl->alg));
            snprintf(err.expected, sizeof err.expected, "%s", sl->hex);
            snprintf(err.actual, sizeof err.actual, "%s", hex);
        }
        bool ok = strcmp(result, "OK") == 0;
        if (!ok && failed++ == 0)
            first = err;
        if (files != NULL) {
            json_array_append_new(files, json_pack("{s:s?,s:s,s:s,s:s?,s:s}", "file", sl->name,
                                                   "algorithm", mg_digest_name(sl->alg),
                                                   "expected", sl->hex, "actual",
                                                   ok || mismatch ? hex : NULL,
                                                   "result", ok ? "OK" : "FAILED"));
        } else if (!quiet || !ok) {
            printf("%s: %s\n", sl->name, result);
        }
        free(sl);
    }
    free(text);
    if (rc == 0 && checked == 0)
        rc = mg_cli_fail(MG_E_FORMAT, json, NULL, "%s lists no file", list);
    if (rc != 0) {
        json_decref(files);
        return rc;
    }
    if (failed > 0)
        fprintf(stderr, "modelgate: integrity: %zu of %zu listed file%s did not match\n", failed,
                checked, checked == 1 ? "" : "s");
    if (files != NULL && (!quiet || failed > 0)) {
        json_t *doc = json_pack("{s:b,s:o,s:i,s:i}", "ok", failed == 0, "files", files, "checked",
                                (int)checked, "failed", (int)failed);
        if (failed > 0)
            json_object_set_new(doc, "error", mg_cli_error_json(&first, NULL, NULL));
        mg_cli_print_json(doc);
        json_decref(doc);
    } else {
        json_decref(files);
    }
    if (fflush(stdout) != 0)
        return MG_E_IO;
    return failed > 0 ? MG_E_INTEGRITY : 0;
}

int mg_cmd_hash(int argc, char **argv)
{
    mg_digest_alg alg = MG_SHA256;
    bool check = false, tag = false, json = false, quiet = false;
    enum { OPT_TAG = MG_OPT_FIRST_FREE };
    static const struct option longopts[] = {
        {"algorithm", required_argument, NULL, 'a'},
        {"check", no_argument, NULL, 'c'},
        {"tag", no_argument, NULL, OPT_TAG},
        {"json", no_argument, NULL, MG_OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"status", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":a:cq", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (!mg_digest_from_name(optarg, &alg))
                return mg_cli_usage("-a takes sha256 or sha512");
            break;
        case 'c': check = true; break;
        case OPT_TAG: tag = true; break;
        case MG_OPT_JSON: json = true; break;
        case 'q': quiet = true; break;
        default: return mg_cli_bad_option(c, argv, "hash");
        }
    }
    if (check) {
        if (argc - optind > 1)
            return mg_cli_usage("-c checks one list; %s", mg_cli_usage_text("hash"));
        return check_list(optind < argc ? argv[optind] : "-", json, quiet);
    }
    return hash_files(argv + optind, argc - optind, alg, tag, json, quiet);
}
