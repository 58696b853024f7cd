/*
 * The library's own time for one load, for bench.py: opens POLICY, times one mg_model_load
 * of SOURCE (verify, read into verified memory, parse: what a service that links
 * libmodelgate waits for) with CLOCK_MONOTONIC, and prints the seconds. Process start,
 * opening the policy and freeing the model at the end are outside the figure; the command
 * line tool's rows include them.
 *
 *     load_time POLICY SOURCE
 */
#include <modelgate.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: load_time POLICY SOURCE\n");
        return 2;
    }
    mg_policy *pol;
    mg_model *m;
    mg_error err;
    if (mg_policy_open(argv[1], NULL, &pol, &err) != MG_OK) {
        fprintf(stderr, "refused: %s: %s\n", mg_status_kind(err.status), err.message);
        return err.status;
    }
    double t0 = now();
    mg_status s = mg_model_load(pol, argv[2], NULL, &m, &err);
    double t1 = now();
    if (s != MG_OK) {
        fprintf(stderr, "refused: %s: %s: %s\n", mg_status_kind(err.status), err.file,
                err.message);
        mg_policy_close(pol);
        return err.status;
    }
    printf("%.6f\n", t1 - t0);
    mg_model_close(m);
    mg_policy_close(pol);
    return 0;
}
