/* fuzz_lua.h - what the fuzz targets that go through the Lua layer
 * (fuzz_config, fuzz_report) share: the Lua and qrun headers, the source
 * directory their recipes' libraries are read from (QR_SOURCE_DIR, set by
 * CMake and scripts/fuzz.sh), and CHECK, which traps so libFuzzer records
 * a wrong verdict as a crash with its input. */
#ifndef QR_FUZZ_LUA_H
#define QR_FUZZ_LUA_H

#include "lua/qr_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QR_SOURCE_DIR
#define QR_SOURCE_DIR "."
#endif

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

#endif
