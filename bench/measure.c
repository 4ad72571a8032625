/* Runs one command and records its wall time, CPU time and peak RSS.
 *
 *     measure RESULT_FILE AS_LIMIT_BYTES -- PROGRAM [ARGS...]
 *
 * Writes "wall_ns maxrss_kib utime_us stime_us wait_status" to RESULT_FILE and exits with the
 * command's status. AS_LIMIT_BYTES > 0 sets RLIMIT_AS in the child before exec.
 *
 * Why not time and wait4 from Python: a child's ru_maxrss includes the memory its process had
 * before exec, and a child forked (or vforked) from the bench driver starts as a copy of a 20-35 MB
 * Python process, which then shows up as every small tool's "peak RSS". This program is a few
 * hundred KiB, so the figure it reports is the command's own. It also leaves the driver's fork
 * cost out of the command's wall time.
 *
 * Built by bench/bench.py: cc -O2 -o measure measure.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: %s RESULT_FILE AS_LIMIT_BYTES -- PROGRAM [ARGS...]\n", argv[0]);
        return 125;
    }
    const char *result_file = argv[1];
    unsigned long long limit = strtoull(argv[2], NULL, 10);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 126;
    }
    if (pid == 0) {
        if (limit > 0) {
            struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
            setrlimit(RLIMIT_AS, &rl);
        }
        execvp(argv[4], argv + 4);
        perror("measure: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("measure: wait4");
        return 126;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long wall_ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    long long utime_us = (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
    long long stime_us = (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
    FILE *f = fopen(result_file, "w");
    if (f == NULL) {
        perror("measure: result file");
        return 126;
    }
    fprintf(f, "%lld %ld %lld %lld %d\n", wall_ns, ru.ru_maxrss, utime_us, stime_us, status);
    fclose(f);
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}
