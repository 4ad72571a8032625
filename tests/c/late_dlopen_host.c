/* A host that is not linked to libpython and loads it after main starts, the way PyInstaller's
 * bootloader does: dlopen(LIBPYTHON, RTLD_NOW | RTLD_GLOBAL), then Py_Initialize, run CODE,
 * Py_FinalizeEx, all through dlsym. With a third argument `local`, libpython is opened with
 * RTLD_LOCAL instead, keeping its symbols out of the global scope.
 *
 * usage: late_dlopen_host LIBPYTHON CODE [local]
 * Built by the end-to-end tests (tests/it/support.rs, c_host) with no Python headers. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef void (*initialize_fn)(void);
typedef int (*run_fn)(const char *);
typedef int (*finalize_fn)(void);

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s LIBPYTHON CODE [local]\n", argv[0]);
        return 2;
    }
    int scope = argc == 4 && strcmp(argv[3], "local") == 0 ? RTLD_LOCAL : RTLD_GLOBAL;
    void *python = dlopen(argv[1], RTLD_NOW | scope);
    if (python == NULL) {
        fprintf(stderr, "late_dlopen_host: %s\n", dlerror());
        return 2;
    }
    initialize_fn initialize = (initialize_fn)dlsym(python, "Py_Initialize");
    run_fn run = (run_fn)dlsym(python, "PyRun_SimpleString");
    finalize_fn finalize = (finalize_fn)dlsym(python, "Py_FinalizeEx");
    if (initialize == NULL || run == NULL || finalize == NULL) {
        fprintf(stderr, "late_dlopen_host: %s is not a libpython\n", argv[1]);
        return 2;
    }
    initialize();
    int status = run(argv[2]);
    if (finalize() != 0 || status != 0) {
        fprintf(stderr, "late_dlopen_host: the code raised\n");
        return 1;
    }
    return 0;
}
