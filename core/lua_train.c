/* lua_train.c - PLACEHOLDER for the trainer bindings (qr.train). */
#include "lua_qr.h"

void qr_lua_train_open(lua_State *L, int mod) {
    (void)L;
    (void)mod;
}
