/* libzip, opened by the parser helper only when it needs it (zip_loader.c). */
#ifndef MG_ZIP_LOADER_H
#define MG_ZIP_LOADER_H

#include <stdbool.h>

/* Open libzip and bind the parsers' calls to it; false when it cannot be opened. */
bool mg_helper_load_zip(void);

#endif
