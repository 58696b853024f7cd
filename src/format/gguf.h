/* The ggml tensor type table of the GGUF parser (formats.md §3.3), for the model builder and tests. */
#ifndef MG_FORMAT_GGUF_H
#define MG_FORMAT_GGUF_H

#include <stdbool.h>
#include <stdint.h>

/* The ggml name of a type id ("F32", "Q4_0", "Q4_K", ...), or NULL for an id that ggml removed
 * (4, 5, 31-33, 36-38) or does not know (>= 43). Static storage. */
const char *mg_gguf_type_name(uint32_t ggml_type);

/* Elements per block and bytes per block of a type id; false (outputs untouched) for an id
 * that mg_gguf_type_name() does not name. */
bool mg_gguf_type_layout(uint32_t ggml_type, uint32_t *block_elements, uint32_t *block_bytes);

#endif
