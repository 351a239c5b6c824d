/* arch.c - the table of architectures (arch.h). Adding one: a file
 * arch_<name>.c defining its descriptor, and a row here. */
#include "arch.h"

#include <string.h>

static const qr_arch_desc *const qr_archs[] = {
    &qr_arch_gpt2,
    &qr_arch_llama,
};

const qr_arch_desc *qr_arch_get(qr_arch id) {
    for (size_t i = 0; i < sizeof qr_archs / sizeof *qr_archs; i++)
        if (qr_archs[i]->id == id) return qr_archs[i];
    return NULL;
}

const qr_arch_desc *qr_arch_find(const char *name) {
    for (size_t i = 0; name && i < sizeof qr_archs / sizeof *qr_archs; i++)
        if (strcmp(qr_archs[i]->name, name) == 0) return qr_archs[i];
    return NULL;
}
