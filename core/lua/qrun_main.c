/* qrun_main.c - the qrun program: Lua 5.4 with the `qr` module, modelled on
 * Lua's own stand-alone interpreter (lua.c).
 *
 *   qrun [options] [script [args]]
 *     script.lua args   run a recipe; arg[0] = script, arg[1..] = args, and
 *                       the chunk's `...` = args
 *     -e code           run code (several -e run in order, before the script)
 *     -l mod            mod = require("mod")
 *     -i                REPL after the script
 *     -v, --version     print the version
 *     --traceback       every error with its stack traceback (also
 *                       QRUN_TRACEBACK=1)
 *     -h, --help        print usage
 *     --                stop handling options;  -  run stdin
 *   With no script: a REPL when stdin is a terminal, else run stdin.
 *
 * Everything runs in pmain() under lua_pcall with a message handler, so
 * even an out-of-memory while opening libraries is reported. The exit code
 * tells the truth: 0 on success, 1 after an error, os.exit's value
 * otherwise.
 *
 * Errors print as "qrun: MSG" on stderr. A user error prints just that
 * line; any other error adds Lua's stack traceback. The rule (see
 * is_user_error): an error is a user error when it was raised on purpose,
 * i.e. the function that raised it is
 *   - error() or assert(), called by a recipe or a recipe library (a
 *     refused configuration, `nil, msg` turned into an error);
 *   - require (a module that is not found or does not compile);
 *   - a C function of the qr module (qr_lua.h, QR_LUA_FUNCTIONS): a bad
 *     argument or option, a file that cannot be read, a refused model or
 *     checkpoint.
 * Everything else keeps its traceback: errors the Lua VM raises in Lua code
 * (indexing or calling nil, arithmetic on a string: a bug in the recipe or
 * in qrun's libraries), errors from Lua's own libraries (a bad argument to
 * string.format), error objects that are neither strings nor have a
 * __tostring. `qrun --traceback` or QRUN_TRACEBACK=1 gives every error its
 * traceback. Syntax errors in the script and a script that cannot be read
 * are reported before anything runs, without one, as lua.c does.
 *
 * SIGINT while Lua code runs stops it with "interrupted" (a hook is set
 * from the signal handler, the one thing that is safe to do there); a
 * second SIGINT kills the process as usual.
 *
 * The REPL edits lines and keeps a history with GNU readline when qrun was
 * built with it (CMake finds it: Debian's libreadline-dev) and stdin is a
 * terminal; the history is $QRUN_HISTORY, else ~/.qrun_history. Otherwise
 * it reads plain lines with fgets. */
#define _POSIX_C_SOURCE 200809L
#include "qr_lua.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef QR_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

#ifndef QR_SOURCE_DIR
#define QR_SOURCE_DIR "."
#endif

#define PROMPT1 "qrun> "
#define PROMPT2 ">> "

static const char *progname = "qrun";
static lua_State *volatile sig_L; /* the state a SIGINT should stop */
static int traceback_all;         /* --traceback, QRUN_TRACEBACK=1 */

/* Registry field: the set {[f] = true} of the functions whose errors are
 * user errors (set_user_error_raisers). */
#define USER_ERROR_RAISERS "qrun.user_error_raisers"

/* ---- errors and signals ---- */

static void message(const char *msg) {
    if (progname) fprintf(stderr, "%s: ", progname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

/* Print the error at the top of the stack (if status is an error). */
static int report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        message(msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return status;
}

/* The functions that raise user errors (the rule at the top): error,
 * assert, require and every C function of the qr module. After the qr
 * module is open. */
static void set_user_error_raisers(lua_State *L) {
    static const char *const raisers[] = {"error", "assert", "require"};
    lua_newtable(L);
    int set = lua_gettop(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, QR_LUA_FUNCTIONS) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, set);
        }
    }
    lua_pop(L, 1);
    for (size_t i = 0; i < sizeof raisers / sizeof raisers[0]; i++) {
        if (lua_getglobal(L, raisers[i]) == LUA_TFUNCTION) {
            lua_pushboolean(L, 1);
            lua_rawset(L, set);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_setfield(L, LUA_REGISTRYINDEX, USER_ERROR_RAISERS);
}

/* In the message handler: was the error raised by one of the user error
 * raisers? Level 1 is the function that raised it (level 0 is the
 * handler): a C function when it called lua_error (error, luaL_error,
 * luaL_argerror), the running Lua function when the VM raised it. */
static int is_user_error(lua_State *L) {
    lua_Debug ar;
    if (!lua_getstack(L, 1, &ar)) return 0;
    lua_getinfo(L, "f", &ar);
    int user = 0;
    if (lua_getfield(L, LUA_REGISTRYINDEX, USER_ERROR_RAISERS) == LUA_TTABLE) {
        lua_pushvalue(L, -2);
        user = lua_rawget(L, -2) != LUA_TNIL;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return user;
}

/* Message handler: a user error as it is, anything else with a traceback
 * (the rule at the top); make a non-string error printable. */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    } else if (!traceback_all && is_user_error(L)) {
        return 1;
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void stop_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void on_sigint(int sig) {
    signal(sig, SIG_DFL); /* a second Ctrl-C kills */
    lua_sethook(sig_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* lua_pcall with the message handler and SIGINT caught while it runs. */
static int docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    sig_L = L;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    int status = lua_pcall(L, narg, nres, base);
    sigaction(SIGINT, &old, NULL);
    lua_remove(L, base);
    return status;
}

/* ---- usage, version ---- */

static void print_version(void) {
    printf("qrun %s (%s)\n", QR_VERSION, LUA_RELEASE);
    fflush(stdout);
}

static void print_usage(FILE *f, const char *badopt) {
    if (badopt) {
        if (badopt[1] == 'e' || badopt[1] == 'l')
            fprintf(f, "%s: '%s' needs an argument\n", progname, badopt);
        else
            fprintf(f, "%s: unrecognized option '%s'\n", progname, badopt);
    }
    fprintf(f,
            "usage: %s [options] [script [args]]\n"
            "Available options are:\n"
            "  -e code        execute string 'code'\n"
            "  -i             enter interactive mode after executing 'script'\n"
            "  -l mod         require library 'mod' into global 'mod'\n"
            "  -v, --version  show version information\n"
            "  --traceback    print every error with its stack traceback\n"
            "  -h, --help     show this help\n"
            "  --             stop handling options\n"
            "  -              execute stdin and stop handling options\n"
            "With no script: a REPL when stdin is a terminal, else stdin is run.\n"
            "Errors print as 'qrun: message'. A user error (raised by error() or\n"
            "assert(), by require, or by a check of the qr module: a bad option, a\n"
            "file that cannot be read) prints just that; any other error (a bug:\n"
            "indexing nil, a bad argument to a Lua library) adds the stack\n"
            "traceback. --traceback or QRUN_TRACEBACK=1: every error gets it.\n"
            "require(\"qr.X\") loads qrun's recipe library X (qr.precision, qr.qrtest,\n"
            "qr.sp_data, qr.squad_qa) from <prefix>/share/qrun/lua/qr or\n"
            "%s/recipes/lib/qr, and nothing else can stand in for it;\n"
            "other modules are found in the script's dir, <dir>/lib and $QRUN_PATH.\n",
            progname, QR_SOURCE_DIR);
    fflush(f);
}

/* ---- command line ---- */

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_H = 16, HAS_T = 32 };

/* Scan options. *script is the index of the script (0 if none); on an
 * error, the index of the bad option. */
static int collectargs(char **argv, int *script) {
    int args = 0, i;
    for (i = 1; argv[i]; i++) {
        *script = i;
        const char *a = argv[i];
        if (a[0] != '-') return args; /* the script */
        if (!strcmp(a, "--help")) {
            args |= HAS_H;
            continue;
        }
        if (!strcmp(a, "--version")) {
            args |= HAS_V;
            continue;
        }
        if (!strcmp(a, "--traceback")) {
            args |= HAS_T;
            continue;
        }
        switch (a[1]) {
        case '-': /* "--" */
            if (a[2]) return HAS_ERROR;
            *script = argv[i + 1] ? i + 1 : 0;
            return args;
        case '\0': return args; /* "-": stdin */
        case 'i':
            if (a[2]) return HAS_ERROR;
            args |= HAS_I | HAS_V;
            break;
        case 'v':
            if (a[2]) return HAS_ERROR;
            args |= HAS_V;
            break;
        case 'h':
            if (a[2]) return HAS_ERROR;
            args |= HAS_H;
            break;
        case 'e':
            args |= HAS_E;
            /* fallthrough */
        case 'l':
            if (a[2] == '\0') {
                i++;
                if (!argv[i] || argv[i][0] == '-') return HAS_ERROR;
            }
            break;
        default: return HAS_ERROR;
        }
    }
    *script = 0;
    return args;
}

/* Global `arg`: arg[0] = script, arg[1..] = its args, negative indices the
 * interpreter and its options (as lua.c). */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
    if (script == 0) script = argc; /* no script: everything is "before" */
    lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* qrun's own recipe libraries (recipes/lib/qr/X.lua, installed in
 * <prefix>/share/qrun/lua/qr/) are the modules `qr.X`. Their folders, as a
 * package.path-style list: an installed qrun's <exe>/../share/qrun/lua
 * (when it exists), then QR_SOURCE_DIR/recipes/lib. */
static void push_libpath(lua_State *L) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 64);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            strcpy(slash, "/../share/qrun/lua");
            struct stat st;
            if (stat(exe, &st) == 0 && S_ISDIR(st.st_mode)) {
                luaL_addstring(&b, exe);
                luaL_addstring(&b, "/?.lua;");
            }
        }
    }
    luaL_addstring(&b, QR_SOURCE_DIR "/recipes/lib/?.lua");
    luaL_pushresult(&b);
}

/* The searcher of `require("qr.X")`: it looks in qrun's library folders
 * only (upvalue 1, with package.searchpath as upvalue 2) and runs before
 * package.path's, so a precision.lua beside a recipe (or anywhere on
 * package.path) cannot stand in for qr.precision. Other names are not its
 * business: it returns nothing and the next searcher tries. */
static int search_qr(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    if (strncmp(name, "qr.", 3) != 0) return 0;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) return 1; /* "no file '...'" for require's message */
    lua_pop(L, 1);
    const char *file = lua_tostring(L, -1);
    if (luaL_loadfile(L, file) != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                          lua_tostring(L, -1));
    lua_insert(L, -2); /* loader, file */
    return 2;
}

/* package.path = <scriptdir>/?.lua;<scriptdir>/lib/?.lua;$QRUN_PATH;
 *                <Lua's default>
 * and search_qr as package.searchers[2], after the preload searcher. */
static void setpath(lua_State *L, const char *script) {
    luaL_Buffer b;
    lua_getglobal(L, "package");
    int pkg = lua_gettop(L);
    luaL_buffinit(L, &b);
    if (script && strcmp(script, "-") != 0) {
        const char *slash = strrchr(script, '/');
        size_t dlen = slash ? (size_t)(slash - script) : 1;
        const char *dir = slash ? script : ".";
        if (slash == script) dlen = 0; /* "/x.lua" */
        luaL_addlstring(&b, dir, dlen);
        luaL_addstring(&b, "/?.lua;");
        luaL_addlstring(&b, dir, dlen);
        luaL_addstring(&b, "/lib/?.lua;");
    }
    const char *env = getenv("QRUN_PATH");
    if (env && *env) {
        luaL_addstring(&b, env);
        if (env[strlen(env) - 1] != ';') luaL_addchar(&b, ';');
    }
    lua_getfield(L, pkg, "path");
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_setfield(L, pkg, "path");

    lua_getfield(L, pkg, "searchers");
    int searchers = lua_gettop(L);
    for (lua_Integer i = luaL_len(L, searchers); i >= 2; i--) {
        lua_rawgeti(L, searchers, i);
        lua_rawseti(L, searchers, i + 1);
    }
    push_libpath(L);
    lua_getfield(L, pkg, "searchpath");
    lua_pushcclosure(L, search_qr, 2);
    lua_rawseti(L, searchers, 2);
    lua_settop(L, pkg - 1);
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = docall(L, 0, 0);
    return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
    return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod: global mod = require("mod") */
static int dolibrary(lua_State *L, const char *name) {
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int status = docall(L, 1, 1);
    if (status == LUA_OK) lua_setglobal(L, name);
    return report(L, status);
}

/* Run -e and -l in order; 0 on the first error. */
static int runargs(lua_State *L, char **argv, int n) {
    for (int i = 1; i < n; i++) {
        char opt = argv[i][1];
        if (argv[i][0] != '-' || (opt != 'e' && opt != 'l')) continue;
        const char *extra = argv[i] + 2;
        if (*extra == '\0') extra = argv[++i];
        int status = opt == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
        if (status != LUA_OK) return 0;
    }
    return 1;
}

static int handle_script(lua_State *L, char **argv) {
    const char *fname = argv[0];
    /* "-" is stdin, unless it came after "--" */
    if (!strcmp(fname, "-") && strcmp(argv[-1], "--") != 0) fname = NULL;
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = 0;
        while (argv[n + 1]) n++;
        luaL_checkstack(L, n + 3, "too many arguments to script");
        for (int i = 1; i <= n; i++) lua_pushstring(L, argv[i]);
        status = docall(L, n, 0);
    }
    return report(L, status);
}

/* ---- REPL ---- */

/* Push the prompt: _PROMPT / _PROMPT2 if set (as in lua.c), else ours. */
static void push_prompt(lua_State *L, int firstline) {
    if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushstring(L, firstline ? PROMPT1 : PROMPT2);
    } else {
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
    }
}

/* ---- line input: readline on a terminal when built with it, else fgets ---- */

#ifdef QR_READLINE
static int use_readline; /* set by doREPL: stdin is a terminal */
static char history_path[4096];

/* $QRUN_HISTORY, else $HOME/.qrun_history; "" (no history file) if neither. */
static void history_open(void) {
    const char *env = getenv("QRUN_HISTORY"), *home = getenv("HOME");
    history_path[0] = 0;
    if (env && *env) snprintf(history_path, sizeof history_path, "%s", env);
    else if (home && *home) snprintf(history_path, sizeof history_path, "%s/.qrun_history", home);
    rl_readline_name = "qrun"; /* for $if qrun in ~/.inputrc */
    using_history();
    stifle_history(1000);
    if (history_path[0]) read_history(history_path); /* none yet is fine */
}

static void history_close(void) {
    if (history_path[0] && write_history(history_path) != 0)
        fprintf(stderr, "qrun: cannot write the history to %s\n", history_path);
    clear_history();
}

/* Keep a complete statement (all its lines) in the history. */
static void saveline(const char *line) {
    if (use_readline && line[0]) add_history(line);
}
#else
static void saveline(const char *line) { (void)line; }
#endif

/* Read one line (any length) into the buffer; 0 at end of input. */
static int readline_fgets(lua_State *L, const char *prompt) {
    fputs(prompt, stdout);
    fflush(stdout);
    luaL_Buffer b;
    char chunk[1024];
    int got = 0;
    luaL_buffinit(L, &b);
    while (fgets(chunk, sizeof chunk, stdin)) {
        got = 1;
        size_t n = strlen(chunk);
        int eol = n > 0 && chunk[n - 1] == '\n';
        luaL_addlstring(&b, chunk, eol ? n - 1 : n);
        if (eol) break;
    }
    luaL_pushresult(&b);
    if (!got) lua_pop(L, 1);
    return got;
}

/* Read one line from stdin and push it, without its newline; a first line
 * "=expr" becomes "return expr". Returns 0 at end of input. */
static int pushline(lua_State *L, int firstline) {
    push_prompt(L, firstline);
    int prompt = lua_gettop(L), got;
#ifdef QR_READLINE
    if (use_readline) {
        char *line = readline(lua_tostring(L, prompt));
        got = line != NULL;
        if (line) {
            lua_pushstring(L, line);
            free(line);
        }
    } else
#endif
    {
        got = readline_fgets(L, lua_tostring(L, prompt));
    }
    lua_remove(L, prompt);
    if (!got) return 0;
    if (firstline && lua_tostring(L, -1)[0] == '=') {
        lua_pushfstring(L, "return %s", lua_tostring(L, -1) + 1);
        lua_remove(L, -2);
    }
    return 1;
}

/* Syntax error (at the top) ending at <eof>: the chunk is incomplete,
 * read more. */
static int incomplete(lua_State *L, int status) {
    if (status != LUA_ERRSYNTAX) return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    const char *mark = "<eof>";
    size_t ml = strlen(mark);
    return len >= ml && strcmp(msg + len - ml, mark) == 0;
}

/* Try the line at the top as "return <line>" (an expression). On success
 * the compiled function replaces the line. */
static int addreturn(lua_State *L) {
    const char *line = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    if (status == LUA_OK) {
        lua_remove(L, -2); /* the "return" string */
        saveline(line);    /* still anchored by the line below */
        lua_remove(L, -2); /* the line */
    } else {
        lua_pop(L, 2); /* error and "return" string; keep the line */
    }
    return status;
}

/* Compile the line at the top as statements, reading continuation lines
 * while it is incomplete. Leaves the function (or the error: the syntax
 * error itself when the input ends inside a statement) instead. */
static int multiline(lua_State *L) {
    for (;;) {
        size_t len;
        const char *line = lua_tolstring(L, -1, &len);
        int status = luaL_loadbuffer(L, line, len, "=stdin");
        if (!incomplete(L, status) || !pushline(L, 0)) {
            saveline(line);
            lua_remove(L, -2); /* the line */
            return status;
        }
        lua_remove(L, -2); /* the "<eof>" error: line, next line */
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
    }
}

/* Read a full statement or expression and compile it. -1 at end of input. */
static int loadline(lua_State *L) {
    lua_settop(L, 0);
    if (!pushline(L, 1)) return -1;
    int status = addreturn(L);
    if (status != LUA_OK) status = multiline(L);
    return status;
}

static void print_results(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        message(lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
}

static void doREPL(lua_State *L) {
    const char *old = progname;
    progname = NULL; /* errors in the REPL print without the program name */
#ifdef QR_READLINE
    use_readline = isatty(0);
    if (use_readline) history_open();
#endif
    int status;
    while ((status = loadline(L)) != -1) {
        if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) print_results(L);
        else report(L, status);
    }
    lua_settop(L, 0);
    fputs("\n", stdout);
    fflush(stdout);
#ifdef QR_READLINE
    if (use_readline) history_close();
#endif
    progname = old;
}

/* ---- main ---- */

static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    int script = 0;
    int args = collectargs(argv, &script);
    luaL_checkversion(L);
    if (args == HAS_ERROR) {
        print_usage(stderr, argv[script]);
        return 0;
    }
    if (args & HAS_H) {
        print_usage(stdout, NULL);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (args & HAS_V) print_version();
    luaL_openlibs(L);
    /* require("qr") works, and the global qr is already there */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_qr);
    lua_setfield(L, -2, "qr");
    lua_pop(L, 1);
    luaL_requiref(L, "qr", luaopen_qr, 1);
    lua_pop(L, 1);
    set_user_error_raisers(L);
    const char *tb = getenv("QRUN_TRACEBACK");
    traceback_all = (args & HAS_T) || (tb && *tb && strcmp(tb, "0") != 0);
    createargtable(L, argv, argc, script);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    setpath(L, script ? argv[script] : NULL);
    if (!runargs(L, argv, script ? script : argc)) return 0;
    if (script && handle_script(L, argv + script) != LUA_OK) return 0;
    if (args & HAS_I) {
        doREPL(L);
    } else if (script == 0 && !(args & (HAS_E | HAS_V))) {
        if (isatty(0)) {
            print_version();
            doREPL(L);
        } else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
            return 0;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv) {
    /* A file-size limit (ulimit -f) reached while writing a checkpoint or
     * results would kill qrun with SIGXFSZ before the writer could say
     * which file; ignored, the write fails with EFBIG, the writer names the
     * file and keeps the previous one, as on a full disk. */
    signal(SIGXFSZ, SIG_IGN);
    lua_State *L = luaL_newstate();
    if (!L) {
        message("cannot create Lua state: not enough memory");
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCSTOP); /* no collections while building the state */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    report(L, status);
    lua_close(L);
    return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
