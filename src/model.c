#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "util/checked.h"

/* What an empty file or buffer hands out as its data: a valid pointer, never NULL, so that
 * memcpy(dst, data, 0) and the like stay defined in the application. */
static const uint8_t no_bytes[1];


mg_status mg_model_build_tensors(mg_model *m, mg_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < m->file_count; i++) {
        if (__builtin_add_overflow(total, m->files[i].parsed.count, &total))
            return mg_fail(err, MG_E_LIMIT, "too many tensors");
    }
    m->tensors = mg_calloc(total, sizeof *m->tensors);
    if (m->tensors == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory for %zu tensors", total);
    for (size_t i = 0; i < m->file_count; i++) {
        mg_verified_file *f = &m->files[i];
        for (size_t j = 0; j < f->parsed.count; j++) {
            const mg_tensor_entry *e = &f->parsed.tensors[j];
            const mg_region *container = &f->region;
            if (e->blob != 0) {
                if (e->blob > f->parsed.blob_count)
                    return mg_fail(err, MG_E_LIMIT, "tensor '%.200s' names a missing buffer",
                                   e->name);
                container = &f->parsed.blobs[e->blob - 1];
            }
            mg_status s = mg_tensor_entry_check(e, container->len, err);
            if (s != MG_OK) {
                mg_error_set_file(err, f->path);
                return s;
            }
            mg_tensor *t = &m->tensors[m->tensor_count++];
            t->name = e->name;
            t->dtype = e->dtype;
            t->dtype_name = mg_dtype_name(e->dtype);
            if (e->dtype == MG_DTYPE_GGML_BLOCK) {
                const char *ggml = mg_gguf_type_name(e->ggml_type);
                t->dtype_name = ggml != NULL ? ggml : "?";
            }
            t->ndim = e->ndim;
            t->shape = e->shape;
            t->nbytes = e->nbytes;
            t->data = container->data != NULL ? container->data + e->data_offset : no_bytes;
            t->file = f->path;
            t->offset = e->offset;
            t->flags = e->flags;
            t->ggml_type = e->ggml_type;
        }
    }
    return MG_OK;
}

const char *mg_model_name(const mg_model *model)
{
    return model->name;
}

const char *mg_model_source(const mg_model *model)
{
    return model->source;
}

int mg_model_parse_confined(const mg_model *model)
{
    return model->parse_confined;
}

int mg_model_file_backed(const mg_model *model)
{
    return model->file_backed ? 1 : 0;
}

size_t mg_model_file_count(const mg_model *model)
{
    return model->file_count;
}

mg_status mg_model_file(const mg_model *model, size_t index, mg_file_info *out)
{
    if (index >= model->file_count)
        return MG_E_USAGE;
    const mg_verified_file *f = &model->files[index];
    out->path = f->path;
    out->format = f->format != NULL ? f->format->name : "asset";
    out->size = f->streamed ? f->streamed_size : f->region.len;
    out->algorithm = mg_digest_name(f->alg);
    out->digest = f->digest_hex;
    out->data = f->streamed ? NULL : f->region.data != NULL ? (const void *)f->region.data : no_bytes;
    out->metadata_json = f->metadata_json;
    return MG_OK;
}

const char *mg_model_cache_path(const mg_model *model, size_t index)
{
    return index < model->file_count ? model->files[index].cache_path : NULL;
}

size_t mg_model_tensor_count(const mg_model *model)
{
    return model->tensor_count;
}

const mg_tensor *mg_model_tensor(const mg_model *model, size_t index)
{
    return index < model->tensor_count ? &model->tensors[index] : NULL;
}

const mg_tensor *mg_model_find_tensor(const mg_model *model, const char *name)
{
    for (size_t i = 0; i < model->tensor_count; i++) {
        if (strcmp(model->tensors[i].name, name) == 0)
            return &model->tensors[i];
    }
    return NULL;
}

mg_status mg_model_asset(const mg_model *model, const char *path, const void **data, size_t *len,
                         mg_error *err)
{
    for (size_t i = 0; i < model->file_count; i++) {
        if (strcmp(model->files[i].path, path) == 0) {
            if (model->files[i].streamed)
                return mg_fail(err, MG_E_USAGE, "'%.300s' was verified without being kept "
                               "(verify and fetch keep no bytes): load the model to read it",
                               path);
            *data = model->files[i].region.data != NULL ? (const void *)model->files[i].region.data
                                                        : no_bytes;
            *len = model->files[i].region.len;
            return MG_OK;
        }
    }
    return mg_fail(err, MG_E_USAGE, "no file '%.300s' in the model", path);
}

void mg_model_close(mg_model *model)
{
    if (model == NULL)
        return;
    for (size_t i = 0; i < model->file_count; i++) {
        mg_verified_file *f = &model->files[i];
        free(f->path);
        mg_region_free(&f->region);
        mg_parse_result_free(&f->parsed);
        free(f->metadata_json);
        free(f->cache_path);
    }
    free(model->files);
    free(model->tensors);
    free(model->name);
    free(model->source);
    free(model);
}

/* ---- conversion on access ------------------------------------------------------------ */

static void swap_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

mg_status mg_tensor_copy(const mg_tensor *t, void *dst, size_t dst_len, mg_error *err)
{
    if (dst_len < t->nbytes)
        return mg_fail(err, MG_E_USAGE, "destination of %zu bytes is smaller than the tensor's "
                       "%llu", dst_len, (unsigned long long)t->nbytes);
    uint8_t *out = dst;
    if (t->nbytes == 0)
        return MG_OK;
    size_t esize = mg_dtype_size(t->dtype);
    if (esize == 0 || (t->flags & (MG_TENSOR_BIG_ENDIAN | MG_TENSOR_FORTRAN)) == 0) {
        memcpy(out, t->data, t->nbytes);
        return MG_OK;
    }
    const uint8_t *src = t->data;
    uint64_t count = t->nbytes / esize;
    if (t->flags & MG_TENSOR_FORTRAN && t->ndim > 1) {
        /* Walk the C-order index and read the element from its Fortran-order position. */
        uint64_t idx[MG_MAX_NDIM] = {0};
        uint64_t fstride[MG_MAX_NDIM];
        uint64_t s = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            fstride[d] = s;
            s *= t->shape[d]; /* bounded: the product equals count, checked by the parser */
        }
        for (uint64_t i = 0; i < count; i++) {
            uint64_t f = 0;
            for (uint32_t d = 0; d < t->ndim; d++)
                f += idx[d] * fstride[d];
            memcpy(out + i * esize, src + f * esize, esize);
            for (uint32_t d = t->ndim; d-- > 0;) {
                if (++idx[d] < t->shape[d])
                    break;
                idx[d] = 0;
            }
        }
    } else {
        memcpy(out, src, t->nbytes);
    }
    if (t->flags & MG_TENSOR_BIG_ENDIAN) {
        /* Complex values are two floats: swap each half. */
        size_t unit = t->dtype == MG_DTYPE_C64 ? esize / 2 : esize;
        for (uint64_t i = 0; i < t->nbytes / unit; i++)
            swap_bytes(out + i * unit, unit);
    }
    return MG_OK;
}
