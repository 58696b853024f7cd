/* HTTPS downloads into verified memory (SPEC §6); the rules are documented in fetch.h. */
#define _GNU_SOURCE
#include "fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "curl_api.h"
#include "util/base64.h"
#include "util/json.h"

/* First allocation for a capped download whose length the server did not announce. */
#define MG_FETCH_INITIAL_BYTES (64u << 10)
/* Body of a redirect answer that is read (and dropped) so libcurl reports its Location. */
#define MG_FETCH_MAX_REDIRECT_BODY (64u << 10)
/* Longest host name or port we compare between redirect hops. */
#define MG_FETCH_HOST_MAX 256

/* One download: the state the write callback works on. */
typedef struct transfer {
    CURL *h;
    mg_region *out;
    uint64_t cap;  /* exact size, or the cap */
    bool exact;
    uint64_t received;
    bool started;  /* the body of a 200 answer has begun */
    bool refused_body; /* the callback stopped the body of a non-200 answer */
    size_t dropped;    /* body bytes of a redirect answer, read and dropped */
    mg_status failed;  /* set (with err filled) when the callback aborted for a reason of ours */
    mg_digest_ctx *md;
    _Atomic uint64_t *done;
    const char *url;
    mg_error *err;
    const mg_fetch_config *cfg;
    char challenge[1024]; /* WWW-Authenticate of the current hop's answer, if any */
    /* Streaming (mg_fetch_stream): the bytes go to `sink` instead of a region. */
    mg_fetch_write_fn sink;
    void *sink_ctx;
    bool ranged;          /* a Range request: only 206 with the exact Content-Range is taken */
    uint64_t range_start; /* first byte asked for; `cap` bytes are asked */
    uint64_t total;       /* size of the whole file, for Content-Range */
    bool range_ignored;   /* the server answered a Range request with 200 */
    char content_range[128]; /* Content-Range of the current hop's answer, if any */
} transfer;

/* Longest token a registry's token endpoint may answer with (the body is capped too). */
#define MG_FETCH_MAX_TOKEN_BODY (64u << 10)

/* ---- verified memory that grows as bytes arrive ------------------------------------- */

static size_t page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

/* Make room for `need` bytes of content (need <= cap), doubling, never past the cap. */
static mg_status reserve(transfer *t, uint64_t need)
{
    mg_region *r = t->out;
    if (r->data != NULL && need <= r->map_len)
        return MG_OK;
    uint64_t want = need;
    if (r->data == NULL) {
        if (!t->exact && want < MG_FETCH_INITIAL_BYTES)
            want = MG_FETCH_INITIAL_BYTES;
    } else if (r->map_len <= UINT64_MAX / 2 && want < (uint64_t)r->map_len * 2) {
        want = (uint64_t)r->map_len * 2;
    }
    if (want > t->cap)
        want = t->cap;
    if (want > SIZE_MAX)
        return mg_fail(t->err, MG_E_LIMIT, "download of %llu bytes does not fit in memory",
                       (unsigned long long)want);
    if (r->data == NULL) {
        mg_status st = mg_region_alloc(r, (size_t)want, t->err);
        if (st != MG_OK)
            return st;
        r->len = 0; /* content so far; set to the received length at the end */
        return MG_OK;
    }
    size_t ps = page_size();
    size_t map_len;
    if (__builtin_add_overflow((size_t)want, ps - 1, &map_len))
        return mg_fail(t->err, MG_E_LIMIT, "download of %llu bytes is too large",
                       (unsigned long long)want);
    map_len &= ~(ps - 1);
    void *p = mremap(r->data, r->map_len, map_len, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return mg_fail(t->err, MG_E_LIMIT, "cannot grow download buffer to %zu bytes: %s",
                       map_len, strerror(errno));
    r->data = p;
    r->map_len = map_len;
    return MG_OK;
}

/* ---- the write callback: hash, count, cap --------------------------------------------- */

static size_t abort_with(transfer *t, mg_status st)
{
    t->failed = st;
    return 0; /* any count other than the one given makes libcurl stop with CURLE_WRITE_ERROR */
}

/*
 * More bytes than allowed. With an exact expected size that is a size mismatch (integrity);
 * otherwise the cap of this kind of file was hit, which is a limit (exit 8) wherever the
 * bytes come from, as it is for a local file.
 */
static mg_status over_cap(transfer *t, uint64_t announced, const char *how)
{
    mg_status st = t->exact ? MG_E_INTEGRITY : MG_E_LIMIT;
    const char *bound = t->exact ? "the expected" : "the cap of";
    if (how == NULL)
        return mg_fail(t->err, st, "%.200s: body is longer than %s %llu bytes", t->url, bound,
                       (unsigned long long)t->cap);
    return mg_fail(t->err, st, "%.200s: %s %llu bytes, more than %s %llu bytes", t->url, how,
                   (unsigned long long)announced, bound, (unsigned long long)t->cap);
}

/* The first body bytes of a 200 answer: check an announced length, then allocate. */
static mg_status start_body(transfer *t)
{
    curl_off_t announced = -1;
    if (mg_curl()->easy_getinfo(t->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) != CURLE_OK)
        announced = -1;
    if (t->ranged) {
        /* Exactly the range asked for, of a file of exactly the pinned size. */
        char want[128];
        snprintf(want, sizeof want, "bytes %llu-%llu/%llu", (unsigned long long)t->range_start,
                 (unsigned long long)(t->range_start + t->cap - 1),
                 (unsigned long long)t->total);
        if (strcmp(t->content_range, want) != 0)
            return mg_fail(t->err, MG_E_INTEGRITY, "%.200s: the server answered the range "
                           "request with Content-Range \"%.100s\", not \"%s\"", t->url,
                           t->content_range, want);
    }
    if (announced >= 0 && (uint64_t)announced > t->cap)
        return over_cap(t, (uint64_t)announced, "server announced");
    if (announced >= 0 && t->exact && (uint64_t)announced != t->cap)
        return mg_fail(t->err, MG_E_INTEGRITY,
                       "%.200s: server announced %lld bytes, expected %llu", t->url,
                       (long long)announced, (unsigned long long)t->cap);
    t->started = true;
    uint64_t first = t->exact ? t->cap : (announced >= 0 ? (uint64_t)announced : 0);
    return first > 0 && t->sink == NULL ? reserve(t, first) : MG_OK;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t n;
    if (__builtin_mul_overflow(size, nmemb, &n))
        return abort_with(t, mg_fail(t->err, MG_E_LIMIT, "impossible chunk size"));
    long code = 0;
    if (mg_curl()->easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        code = 0;
    if (code >= 300 && code < 400 && n <= MG_FETCH_MAX_REDIRECT_BODY - t->dropped) {
        /* libcurl reports a redirect's target only after a complete answer: read a short
         * redirect body through, drop it. */
        t->dropped += n;
        return n;
    }
    if (t->ranged && code == 200) {
        /* The server ignores Range: nothing of this body is taken; the caller falls back. */
        t->range_ignored = true;
        return abort_with(t, mg_fail(t->err, MG_E_IO, "%.200s: the server ignores range "
                                     "requests", t->url));
    }
    if (code != (t->ranged ? 206 : 200)) {
        /* The body of an error answer (or an overlong redirect body) is never needed. */
        t->refused_body = true;
        return 0;
    }
    if (!t->started) {
        mg_status st = start_body(t);
        if (st != MG_OK)
            return abort_with(t, st);
    }
    if ((uint64_t)n > t->cap - t->received)
        return abort_with(t, over_cap(t, t->received + n, NULL));
    if (n == 0)
        return 0;
    if (t->sink != NULL) {
        mg_status ws = t->sink(t->sink_ctx, t->range_start + t->received, (const uint8_t *)ptr,
                               n, t->err);
        if (ws != MG_OK)
            return abort_with(t, ws);
        t->received += n;
        if (t->done != NULL)
            atomic_fetch_add_explicit(t->done, n, memory_order_relaxed);
        return n;
    }
    mg_status st = reserve(t, t->received + n);
    if (st != MG_OK)
        return abort_with(t, st);
    memcpy(t->out->data + t->received, ptr, n);
    st = mg_digest_update(t->md, t->out->data + t->received, n, t->err);
    if (st != MG_OK)
        return abort_with(t, st);
    t->received += n;
    if (t->done != NULL)
        atomic_fetch_add_explicit(t->done, n, memory_order_relaxed);
    return n;
}

/* ---- URLs and redirect rules ----------------------------------------------------------- */

typedef struct url_parts {
    char scheme[16];
    char host[MG_FETCH_HOST_MAX];
    unsigned long port;
    bool has_userinfo;
} url_parts;

static bool get_part(CURLU *u, CURLUPart what, unsigned flags, char *dst, size_t cap)
{
    char *v = NULL;
    if (mg_curl()->url_get(u, what, &v, flags) != CURLUE_OK || v == NULL)
        return false;
    bool ok = mg_strlcpy(dst, v, cap);
    mg_curl()->free(v);
    return ok;
}

static bool has_part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    CURLUcode rc = mg_curl()->url_get(u, what, &v, 0);
    mg_curl()->free(v);
    return rc == CURLUE_OK;
}

/* Checked decimal port, no sign, no spaces: our own parser instead of strtoul. */
static bool parse_port(const char *s, unsigned long *out)
{
    unsigned long v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return false;
    }
    *out = v;
    return true;
}

/* Split an absolute URL; scheme and host lower-cased, the port made explicit. */
static bool split_url(const char *url, url_parts *p)
{
    memset(p, 0, sizeof *p);
    CURLU *u = mg_curl()->url();
    if (u == NULL)
        return false;
    bool ok = false;
    char port[16];
    if (mg_curl()->url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto done;
    if (!get_part(u, CURLUPART_SCHEME, 0, p->scheme, sizeof p->scheme) ||
        !get_part(u, CURLUPART_HOST, 0, p->host, sizeof p->host) ||
        !get_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, port, sizeof port) ||
        !parse_port(port, &p->port))
        goto done;
    p->has_userinfo = has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
                      has_part(u, CURLUPART_OPTIONS);
    for (char *c = p->scheme; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    for (char *c = p->host; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    ok = p->host[0] != '\0';
done:
    mg_curl()->url_cleanup(u);
    return ok;
}

/* May a redirect from `from` to `to` be followed under `rule`? Fills err when not. */
static mg_status check_redirect(mg_redirects rule, const char *from, const char *to,
                                mg_error *err)
{
    if (rule == MG_REDIRECTS_NONE)
        return mg_fail(err, MG_E_IO,
                       "%.200s: redirect to %.200s refused: the policy allows no redirects",
                       from, to);
    url_parts a, b;
    if (!split_url(to, &b))
        return mg_fail(err, MG_E_IO, "%.200s: redirect to an unusable URL refused", from);
    if (strcmp(b.scheme, "https") != 0)
        return mg_fail(err, MG_E_IO, "%.200s: redirect to %.200s refused: not https", from, to);
    if (b.has_userinfo)
        return mg_fail(err, MG_E_IO, "%.200s: redirect to an URL with user info refused", from);
    if (rule == MG_REDIRECTS_HTTPS)
        return MG_OK;
    if (!split_url(from, &a))
        return mg_fail(err, MG_E_IO, "%.200s: cannot parse the URL", from);
    if (strcmp(a.scheme, b.scheme) != 0 || strcmp(a.host, b.host) != 0 || a.port != b.port)
        return mg_fail(err, MG_E_IO,
                       "%.200s: redirect to %.200s refused: the policy allows only the same host",
                       from, to);
    return MG_OK;
}

static bool is_redirect_status(long code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* ---- authentication ----------------------------------------------------------------- */

/* Keep the WWW-Authenticate header of the current answer (the first, cut at 1023 bytes). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t n = size * nmemb; /* libcurl: size is always 1 */
    static const char name[] = "www-authenticate:";
    static const char cr[] = "content-range:";
    if (n > sizeof cr - 1 && strncasecmp(ptr, cr, sizeof cr - 1) == 0) {
        size_t i = sizeof cr - 1;
        while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
            i++;
        size_t e = n;
        while (e > i && (ptr[e - 1] == '\r' || ptr[e - 1] == '\n' || ptr[e - 1] == ' '))
            e--;
        size_t len = e - i < sizeof t->content_range - 1 ? e - i : sizeof t->content_range - 1;
        memcpy(t->content_range, ptr + i, len);
        t->content_range[len] = '\0';
    }
    if (n > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0 &&
        t->challenge[0] == '\0') {
        size_t i = sizeof name - 1;
        while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
            i++;
        size_t e = n;
        while (e > i && (ptr[e - 1] == '\r' || ptr[e - 1] == '\n' || ptr[e - 1] == ' '))
            e--;
        size_t len = e - i < sizeof t->challenge - 1 ? e - i : sizeof t->challenge - 1;
        memcpy(t->challenge, ptr + i, len);
        t->challenge[len] = '\0';
    }
    return n;
}

/* "host" or "host:port" (443 dropped): the key of the credentials file. */
static void host_key(const url_parts *p, char *out, size_t cap)
{
    if (p->port == 443)
        snprintf(out, cap, "%s", p->host);
    else
        snprintf(out, cap, "%s:%lu", p->host, p->port);
}

/* The headers and client certificate of one hop: credentials only for their own host. */
static mg_status hop_auth(CURL *h, const mg_fetch_config *cfg, const char *url,
                          const char *bearer_host, const char *bearer, struct curl_slist **hdrs,
                          mg_error *err)
{
    mg_curl()->slist_free_all(*hdrs);
    *hdrs = NULL;
    url_parts p;
    char key[MG_FETCH_HOST_MAX + 8] = "";
    if (split_url(url, &p))
        host_key(&p, key, sizeof key);
    const mg_credential *cr = key[0] != '\0' ? mg_policy_credential(cfg->pol, key) : NULL;
    char *line = NULL;
    if (bearer != NULL && bearer_host != NULL && strcmp(bearer_host, key) == 0) {
        if (asprintf(&line, "Authorization: Bearer %s", bearer) < 0)
            line = NULL;
    } else if (cr != NULL && cr->token != NULL) {
        if (asprintf(&line, "Authorization: Bearer %s", cr->token) < 0)
            line = NULL;
    } else if (cr != NULL && cr->username != NULL) {
        char *pair = NULL;
        if (asprintf(&pair, "%s:%s", cr->username, cr->password) >= 0) {
            size_t plen = strlen(pair);
            char *b64 = malloc(mg_base64_encoded_len(plen) + 1);
            if (b64 != NULL) {
                mg_base64_encode((const uint8_t *)pair, plen, b64);
                if (asprintf(&line, "Authorization: Basic %s", b64) < 0)
                    line = NULL;
                explicit_bzero(b64, strlen(b64));
                free(b64);
            }
            explicit_bzero(pair, plen);
            free(pair);
        }
        if (line == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    struct curl_slist *l = NULL;
    if (cfg->accept != NULL && (l = mg_curl()->slist_append(l, cfg->accept)) == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    if (line != NULL) {
        struct curl_slist *l2 = mg_curl()->slist_append(l, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (l2 == NULL) {
            mg_curl()->slist_free_all(l);
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        }
        l = l2;
    }
    *hdrs = l;
    if (mg_curl()->easy_setopt(h, CURLOPT_HTTPHEADER, l) != CURLE_OK ||
        mg_curl()->easy_setopt(h, CURLOPT_SSLCERT, cr != NULL ? cr->client_cert : NULL) != CURLE_OK ||
        mg_curl()->easy_setopt(h, CURLOPT_SSLKEY, cr != NULL ? cr->client_key : NULL) != CURLE_OK)
        return mg_fail(err, MG_E_LIMIT, "libcurl refused the request headers");
    return MG_OK;
}

/* One parameter of a Bearer challenge: name="value" (quoted; a comma may be inside). */
static bool challenge_param(const char *ch, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = ch;
    while ((p = strcasestr(p, name)) != NULL) {
        bool start = p == ch || p[-1] == ' ' || p[-1] == ',';
        if (start && p[nl] == '=' && p[nl + 1] == '"') {
            const char *v = p + nl + 2;
            const char *e = strchr(v, '"');
            if (e == NULL || (size_t)(e - v) >= cap)
                return false;
            memcpy(out, v, (size_t)(e - v));
            out[e - v] = '\0';
            return true;
        }
        p += nl;
    }
    return false;
}

static mg_status fetch(const mg_fetch_config *cfg, const char *url, uint64_t size, bool exact,
                       mg_digest_alg alg, mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                       _Atomic uint64_t *done, bool *found, mg_error *err);

/* The registry token flow for a Bearer challenge: returns a malloc'd token or fails. */
static mg_status get_token(const mg_fetch_config *cfg, const char *challenge, char **token,
                           mg_error *err)
{
    *token = NULL;
    char realm[512], service[256] = "", scope[512] = "";
    if (!challenge_param(challenge, "realm", realm, sizeof realm))
        return mg_fail(err, MG_E_IO, "the server asks for a bearer token without a usable realm");
    (void)challenge_param(challenge, "service", service, sizeof service);
    (void)challenge_param(challenge, "scope", scope, sizeof scope);
    CURL *h = mg_curl()->easy_init();
    if (h == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory (libcurl handle)");
    char *es = mg_curl()->easy_escape(h, service, 0), *esc = mg_curl()->easy_escape(h, scope, 0);
    char *u = NULL;
    int n = es != NULL && esc != NULL
                ? asprintf(&u, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
                           es, esc)
                : -1;
    mg_curl()->free(es);
    mg_curl()->free(esc);
    mg_curl()->easy_cleanup(h);
    if (n < 0)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_fetch_config tc = {.ca_file = cfg->ca_file, .redirects = MG_REDIRECTS_SAME_HOST, .pol = cfg->pol};
    mg_region r;
    uint8_t d[MG_DIGEST_MAX];
    mg_status s = fetch(&tc, u, MG_FETCH_MAX_TOKEN_BODY, false, MG_SHA256, &r, d, NULL, NULL,
                        err);
    free(u);
    if (s != MG_OK) {
        char why[MG_ERROR_MESSAGE_MAX];
        mg_strlcpy(why, err->message, sizeof why);
        return mg_fail(err, s == MG_E_INTEGRITY ? MG_E_LIMIT : s, "registry token request: %s",
                       why);
    }
    json_t *j = r.len > 0 ? mg_json_parse(r.data, r.len, "token answer", MG_E_IO,
                                          &mg_json_caps_policy, err) : NULL;
    if (r.data != NULL)
        explicit_bzero(r.data, r.len);
    mg_region_free(&r);
    if (j == NULL)
        return mg_fail(err, MG_E_IO, "registry token request: the answer is not JSON");
    json_t *t = json_object_get(j, "token");
    if (!json_is_string(t))
        t = json_object_get(j, "access_token");
    const char *tv = json_is_string(t) ? json_string_value(t) : NULL;
    bool ok = tv != NULL && tv[0] != '\0' && strlen(tv) <= 8192;
    for (const char *c = tv; ok && *c != '\0'; c++)
        ok = (unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f;
    if (ok)
        *token = mg_strdup(tv);
    json_decref(j);
    if (!ok)
        return mg_fail(err, MG_E_IO, "registry token request: no usable token in the answer");
    return *token != NULL ? MG_OK : mg_fail(err, MG_E_LIMIT, "out of memory");
}

/* ---- handle setup ------------------------------------------------------------------------ */

/* The low-speed window: 30 s, or shorter for tests through MODELGATE_TEST_LOW_SPEED_TIME. */
static long low_speed_time(void)
{
    const char *s = getenv(MG_FETCH_TEST_LOW_SPEED_ENV);
    unsigned long v;
    if (s == NULL || !parse_port(s, &v)) /* digits only, at most 65535 */
        return MG_FETCH_LOW_SPEED_TIME_S;
    if (v < 1)
        v = 1;
    return v < (unsigned long)MG_FETCH_LOW_SPEED_TIME_S ? (long)v : MG_FETCH_LOW_SPEED_TIME_S;
}

#define SETOPT(h, opt, val)                                                                   \
    do {                                                                                      \
        CURLcode rc_ = mg_curl()->easy_setopt((h), (opt), (val));                                   \
        if (rc_ != CURLE_OK)                                                                  \
            return mg_fail(err, MG_E_LIMIT, "libcurl refused %s: %s", #opt,                  \
                           mg_curl()->easy_strerror(rc_));                                          \
    } while (0)

static mg_status setup_handle(CURL *h, const mg_fetch_config *cfg, transfer *t, char *errbuf,
                              mg_error *err)
{
    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    /* Redirects are followed by hand so that every hop passes the model's rule. */
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_MAXREDIRS, 0L);
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->ca_file != NULL)
        SETOPT(h, CURLOPT_CAINFO, cfg->ca_file);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT, MG_FETCH_CONNECT_TIMEOUT_S);
    SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, MG_FETCH_LOW_SPEED_LIMIT);
    SETOPT(h, CURLOPT_LOW_SPEED_TIME, low_speed_time());
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_FAILONERROR, 1L);
    /* The bytes hashed are the bytes sent: no Accept-Encoding, and no decoding either. */
    SETOPT(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    SETOPT(h, CURLOPT_NOPROGRESS, 1L);
    SETOPT(h, CURLOPT_USERAGENT, "modelgate/0.1");
    /* libcurl 7.88 honours this only for an announced Content-Length (trust.md §4);
     * on_body enforces the cap on every byte. 0 would mean "no limit", so it is skipped. */
    if (!t->ranged && t->cap > 0 && t->cap <= (uint64_t)INT64_MAX) /* a range: start_body */
        SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->cap);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, t);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, t);
    return MG_OK;
}

/* ---- one download ---------------------------------------------------------------------- */

static bool is_tls_error(CURLcode rc)
{
    return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
           rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
           rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ISSUER_ERROR ||
           rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || rc == CURLE_SSL_INVALIDCERTSTATUS ||
           rc == CURLE_SSL_CRL_BADFILE || rc == CURLE_SSL_SHUTDOWN_FAILED;
}

/* Did the server answer this hop with an HTTP status (rather than fail before one)? */
static bool answered(const transfer *t, CURLcode rc)
{
    return rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR || t->refused_body;
}

/* Turn the outcome of the final hop into a status (MG_OK only for a complete 200 body). */
static mg_status judge(transfer *t, CURLcode rc, long code, const char *errbuf)
{
    const char *url = t->url;
    long ok_code = t->ranged ? 206 : 200;
    const char *why = errbuf[0] != '\0' ? errbuf : mg_curl()->easy_strerror(rc);
    if (t->failed != MG_OK)
        return t->failed;
    if (rc == CURLE_FILESIZE_EXCEEDED && code == ok_code)
        return t->exact ? mg_fail(t->err, MG_E_INTEGRITY,
                                  "%.200s: server announced more than the expected %llu bytes",
                                  url, (unsigned long long)t->cap)
                        : mg_fail(t->err, MG_E_LIMIT,
                                  "%.200s: server announced more than the cap of %llu bytes",
                                  url, (unsigned long long)t->cap);
    if ((code == 401 || code == 403) && answered(t, rc)) {
        url_parts p;
        char key[MG_FETCH_HOST_MAX + 8] = "?";
        if (split_url(url, &p))
            host_key(&p, key, sizeof key);
        bool have = mg_policy_credential(t->cfg->pol, key) != NULL;
        return mg_fail(t->err, MG_E_IO, "%.200s: HTTP status %ld: %s", url, code,
                       code == 403 ? "access denied"
                       : have      ? "the credentials for this host were refused"
                                   : "authentication required (no credentials for this host "
                                     "in the policy's credentials file)");
    }
    if (code != 0 && code != ok_code && answered(t, rc))
        return mg_fail(t->err, MG_E_IO, "%.200s: HTTP status %ld", url, code);
    if (rc == CURLE_PARTIAL_FILE && t->exact)
        return mg_fail(t->err, MG_E_INTEGRITY,
                       "%.200s: transfer ended after %llu bytes, expected %llu (%.200s)", url,
                       (unsigned long long)t->received, (unsigned long long)t->cap, why);
    if (rc == CURLE_PARTIAL_FILE) {
        /* No size is known here: the length the server announced is what was not met. */
        curl_off_t announced = -1;
        if (mg_curl()->easy_getinfo(t->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) != CURLE_OK)
            announced = -1;
        if (announced >= 0)
            return mg_fail(t->err, MG_E_IO, "%.200s: transfer ended after %llu of the %lld "
                           "bytes the server announced", url, (unsigned long long)t->received,
                           (long long)announced);
        return mg_fail(t->err, MG_E_IO, "%.200s: transfer ended early, after %llu bytes (%.200s)",
                       url, (unsigned long long)t->received, why);
    }
    if (rc == CURLE_OUT_OF_MEMORY)
        /* What libcurl 7.88 returns for a response header line past its cap (100 KiB) or
         * headers past 300 KiB, with no message of its own; a real shortage of memory is far
         * less likely on a response this small. */
        return mg_fail(t->err, MG_E_LIMIT, "%.200s: the server's response headers exceed "
                       "libcurl's cap (or memory ran out): %.200s", url,
                       errbuf[0] != '\0' ? errbuf : "no detail from libcurl");
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return mg_fail(t->err, MG_E_IO, "%.200s: too slow or stalled (%.200s)", url, why);
    if (is_tls_error(rc))
        return mg_fail(t->err, MG_E_IO, "%.200s: TLS failure: %.200s", url, why);
    if (rc != CURLE_OK)
        return mg_fail(t->err, MG_E_IO, "%.200s: %.200s", url, why);
    if (code != ok_code)
        return mg_fail(t->err, MG_E_IO, "%.200s: HTTP status %ld", url, code);
    if (t->exact && t->received != t->cap)
        return mg_fail(t->err, MG_E_INTEGRITY, "%.200s: received %llu bytes, expected %llu",
                       url, (unsigned long long)t->received, (unsigned long long)t->cap);
    return MG_OK;
}

/* A streamed download (mg_fetch_stream): where the bytes go and which of them are asked. */
typedef struct stream_spec {
    mg_fetch_write_fn fn;
    void *ctx;
    bool ranged;
    uint64_t start;
    uint64_t total;
    bool *range_ignored;
} stream_spec;

static mg_status fetch_ex(const mg_fetch_config *cfg, const char *url, uint64_t size, bool exact,
                          mg_digest_alg alg, mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                          _Atomic uint64_t *done, bool *found, const stream_spec *sp,
                          mg_error *err);

static mg_status fetch(const mg_fetch_config *cfg, const char *url, uint64_t size, bool exact,
                       mg_digest_alg alg, mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                       _Atomic uint64_t *done, bool *found, mg_error *err)
{
    return fetch_ex(cfg, url, size, exact, alg, out, digest, done, found, NULL, err);
}

static mg_status fetch_ex(const mg_fetch_config *cfg, const char *url, uint64_t size, bool exact,
                          mg_digest_alg alg, mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                          _Atomic uint64_t *done, bool *found, const stream_spec *sp,
                          mg_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (found != NULL)
        *found = false;
    if (mg_curl_load(err) == NULL) /* (MG_E_IO, err filled) */
        return MG_E_IO;
    url_parts first;
    if (cfg == NULL || url == NULL || !split_url(url, &first) ||
        strcmp(first.scheme, "https") != 0 || first.has_userinfo)
        return mg_fail(err, MG_E_USAGE, "%.200s: not an https URL without user info",
                       url != NULL ? url : "(null)");
    if (size > MG_MAX_MODEL_FILE_BYTES)
        return mg_fail(err, MG_E_LIMIT, "%.200s: %llu bytes exceeds the cap of one file", url,
                       (unsigned long long)size);

    transfer t = {.out = out, .cap = size, .exact = exact, .done = done, .err = err, .cfg = cfg};
    if (sp != NULL) {
        t.sink = sp->fn;
        t.sink_ctx = sp->ctx;
        t.ranged = sp->ranged;
        t.range_start = sp->start;
        t.total = sp->total;
    }
    struct curl_slist *hdrs = NULL;
    char *bearer = NULL;            /* from the token flow, for bearer_host only */
    char bearer_host[MG_FETCH_HOST_MAX + 8] = "";
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    char *current = mg_strdup(url);
    /* A streamed download is hashed by its sink (the caller knows what the bytes are). */
    mg_status st = sp != NULL ? MG_OK : mg_digest_new(alg, &t.md, err);
    if (st != MG_OK) {
        free(current);
        return st;
    }
    t.h = mg_curl()->easy_init();
    if (current == NULL || t.h == NULL) {
        st = mg_fail(err, MG_E_LIMIT, "out of memory (libcurl handle)");
        goto finish;
    }
    st = setup_handle(t.h, cfg, &t, errbuf, err);
    if (st != MG_OK)
        goto finish;
    if (t.ranged) {
        char range[64];
        snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)t.range_start,
                 (unsigned long long)(t.range_start + size - 1));
        if (mg_curl()->easy_setopt(t.h, CURLOPT_RANGE, range) != CURLE_OK) {
            st = mg_fail(err, MG_E_LIMIT, "libcurl refused CURLOPT_RANGE");
            goto finish;
        }
    }

    for (int hop = 0;; hop++) {
        t.url = current;
        t.refused_body = false;
        t.dropped = 0;
        t.challenge[0] = '\0';
        t.content_range[0] = '\0';
        errbuf[0] = '\0';
        st = hop_auth(t.h, cfg, current, bearer_host, bearer, &hdrs, err);
        if (st != MG_OK)
            goto finish;
        if (mg_curl()->easy_setopt(t.h, CURLOPT_URL, current) != CURLE_OK) {
            st = mg_fail(err, MG_E_LIMIT, "libcurl refused the URL %.200s", current);
            goto finish;
        }
        CURLcode rc = mg_curl()->easy_perform(t.h);
        long code = 0;
        if (mg_curl()->easy_getinfo(t.h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
            code = 0;
        if (t.failed == MG_OK && is_redirect_status(code) && !t.started && rc == CURLE_OK) {
            char *next = NULL;
            if (mg_curl()->easy_getinfo(t.h, CURLINFO_REDIRECT_URL, &next) != CURLE_OK ||
                next == NULL) {
                st = mg_fail(err, MG_E_IO, "%.200s: HTTP %ld without a usable Location",
                             current, code);
                goto finish;
            }
            if (hop >= MG_FETCH_MAX_REDIRECTS) {
                st = mg_fail(err, MG_E_IO, "%.200s: more than %d redirects", url,
                             MG_FETCH_MAX_REDIRECTS);
                goto finish;
            }
            st = check_redirect(cfg->redirects, current, next, err);
            if (st != MG_OK)
                goto finish;
            char *copy = mg_strdup(next); /* `next` lives in the handle until the next perform */
            if (copy == NULL) {
                st = mg_fail(err, MG_E_LIMIT, "out of memory");
                goto finish;
            }
            free(current);
            current = copy;
            continue;
        }
        if (code == 401 && bearer == NULL && t.failed == MG_OK && !t.started &&
            answered(&t, rc) && strncasecmp(t.challenge, "Bearer ", 7) == 0) {
            /* The registry token flow, once; then the request again from the start. */
            url_parts hp;
            if (!split_url(current, &hp)) {
                st = mg_fail(err, MG_E_IO, "%.200s: cannot parse the URL", current);
                goto finish;
            }
            host_key(&hp, bearer_host, sizeof bearer_host);
            st = get_token(cfg, t.challenge, &bearer, err);
            if (st != MG_OK)
                goto finish;
            free(current);
            current = mg_strdup(url);
            if (current == NULL) {
                st = mg_fail(err, MG_E_LIMIT, "out of memory");
                goto finish;
            }
            hop = -1;
            continue;
        }
        if (found != NULL && code == 404 && t.failed == MG_OK && answered(&t, rc)) {
            st = MG_OK; /* absent optional file: *found stays false, *out empty */
            goto finish;
        }
        st = judge(&t, rc, code, errbuf);
        break;
    }
    if (st != MG_OK)
        goto finish;
    if (out != NULL) {
        st = mg_digest_final(t.md, digest, err);
        if (st != MG_OK)
            goto finish;
        out->len = (size_t)t.received;
        if (out->len == 0)
            mg_region_free(out);
    }
    if (found != NULL)
        *found = true;
finish:
    if (sp != NULL && sp->range_ignored != NULL)
        *sp->range_ignored = t.range_ignored;
    if (st != MG_OK && out != NULL)
        mg_region_free(out);
    if (t.h != NULL)
        mg_curl()->easy_cleanup(t.h);
    mg_curl()->slist_free_all(hdrs);
    if (bearer != NULL) {
        explicit_bzero(bearer, strlen(bearer));
        free(bearer);
    }
    mg_digest_free(t.md);
    free(current);
    return st;
}

mg_status mg_fetch_region(const mg_fetch_config *cfg, const char *url, uint64_t size, bool exact,
                          mg_digest_alg alg, mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                          _Atomic uint64_t *done, mg_error *err)
{
    return fetch(cfg, url, size, exact, alg, out, digest, done, NULL, err);
}

mg_status mg_fetch_region_optional(const mg_fetch_config *cfg, const char *url, uint64_t size,
                                   bool exact, mg_digest_alg alg, mg_region *out,
                                   uint8_t digest[MG_DIGEST_MAX], _Atomic uint64_t *done,
                                   bool *found, mg_error *err)
{
    return fetch(cfg, url, size, exact, alg, out, digest, done, found, err);
}

mg_status mg_fetch_stream(const mg_fetch_config *cfg, const char *url, uint64_t total,
                          uint64_t start, uint64_t len, bool exact, mg_fetch_write_fn fn,
                          void *ctx, _Atomic uint64_t *done, bool *range_ignored, mg_error *err)
{
    if (range_ignored != NULL)
        *range_ignored = false;
    bool ranged = !(start == 0 && len == total);
    if (fn == NULL || (ranged && (!exact || len == 0 || start > total || len > total - start)))
        return mg_fail(err, MG_E_USAGE, "internal error: bad range %llu+%llu of %llu",
                       (unsigned long long)start, (unsigned long long)len,
                       (unsigned long long)total);
    stream_spec sp = {.fn = fn, .ctx = ctx, .ranged = ranged, .start = start, .total = total,
                      .range_ignored = range_ignored};
    return fetch_ex(cfg, url, len, exact, MG_SHA256, NULL, NULL, done, NULL, &sp, err);
}
