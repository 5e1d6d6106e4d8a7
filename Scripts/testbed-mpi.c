/* The testbed's MPI job (Scripts/testbed.py run apps; docs/testbed.md): an unmodified MPI program of the
 * kind the 2006 paper ran (fastDNAml: a master handing tasks to workers), plus the collective and bulk
 * traffic that makes a cluster job sensitive to its network.
 *
 *   testbed-mpi TASKS ITERATIONS ROUNDS BYTES
 *
 * 1. Task farm: rank 0 hands out TASKS tasks one at a time to whichever worker is free; a task is ITERATIONS
 *    rounds of an integer mix seeded by its number; the results are summed (the same sum on every network).
 * 2. Collectives: ROUNDS MPI_Allreduce of one integer each, every result checked exactly.
 * 3. Bulk: rank 0 broadcasts BYTES, every rank returns its checksum, which rank 0 checks.
 *
 * Prints one line: `tasks=... farm_s=... allreduce_s=... bcast_s=... total_s=... checksum=... ok=1`, and exits
 * 1 if a check failed. Built by testbed.py with mpicc. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t task(uint64_t seed, long iterations) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (long i = 0; i < iterations; i++) {
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
    }
    return x;
}

static uint64_t checksum(const unsigned char *data, long n) {
    uint64_t h = 1469598103934665603ull;
    for (long i = 0; i < n; i++) h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 5 || size < 2) {
        if (rank == 0) fprintf(stderr, "usage: testbed-mpi TASKS ITERATIONS ROUNDS BYTES (at least 2 ranks)\n");
        MPI_Finalize();
        return 2;
    }
    long tasks = atol(argv[1]), iterations = atol(argv[2]), rounds = atol(argv[3]), bytes = atol(argv[4]);
    int ok = 1;
    enum { WORK = 1, DONE = 2, RESULT = 3 };

    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    uint64_t sum = 0;
    if (rank == 0) {
        long next = 0, outstanding = 0;
        for (int w = 1; w < size; w++) {
            if (next < tasks) {
                MPI_Send(&next, 1, MPI_LONG, w, WORK, MPI_COMM_WORLD);
                next++;
                outstanding++;
            } else {
                MPI_Send(&next, 1, MPI_LONG, w, DONE, MPI_COMM_WORLD);
            }
        }
        while (outstanding > 0) {
            uint64_t result[2];
            MPI_Status status;
            MPI_Recv(result, 2, MPI_UINT64_T, MPI_ANY_SOURCE, RESULT, MPI_COMM_WORLD, &status);
            sum += result[1];
            outstanding--;
            if (next < tasks) {
                MPI_Send(&next, 1, MPI_LONG, status.MPI_SOURCE, WORK, MPI_COMM_WORLD);
                next++;
                outstanding++;
            } else {
                MPI_Send(&next, 1, MPI_LONG, status.MPI_SOURCE, DONE, MPI_COMM_WORLD);
            }
        }
    } else {
        for (;;) {
            long number;
            MPI_Status status;
            MPI_Recv(&number, 1, MPI_LONG, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
            if (status.MPI_TAG == DONE) break;
            uint64_t result[2] = {(uint64_t)number, task((uint64_t)number, iterations)};
            MPI_Send(result, 2, MPI_UINT64_T, 0, RESULT, MPI_COMM_WORLD);
        }
    }
    double t1 = MPI_Wtime();

    for (long r = 0; r < rounds; r++) {
        long mine = rank + r, total = 0;
        MPI_Allreduce(&mine, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
        if (total != (long)size * (size - 1) / 2 + (long)size * r) ok = 0;
    }
    double t2 = MPI_Wtime();

    unsigned char *data = malloc(bytes > 0 ? bytes : 1);
    if (data == NULL) MPI_Abort(MPI_COMM_WORLD, 3);
    if (rank == 0)
        for (long i = 0; i < bytes; i++) data[i] = (unsigned char)(i * 131 + (i >> 9));
    MPI_Bcast(data, (int)bytes, MPI_UNSIGNED_CHAR, 0, MPI_COMM_WORLD);
    uint64_t mine = checksum(data, bytes);
    uint64_t *all = rank == 0 ? malloc(sizeof(uint64_t) * size) : NULL;
    MPI_Gather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank == 0)
        for (int i = 0; i < size; i++)
            if (all[i] != mine) ok = 0;
    double t3 = MPI_Wtime();

    int everywhere = 0;
    MPI_Reduce(&ok, &everywhere, 1, MPI_INT, MPI_MIN, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("ranks=%d tasks=%ld farm_s=%.3f allreduce_s=%.3f bcast_s=%.3f total_s=%.3f checksum=%016llx ok=%d\n",
               size, tasks, t1 - t0, t2 - t1, t3 - t2, t3 - t0, (unsigned long long)sum, everywhere);
        fflush(stdout);
    }
    free(data);
    free(all);
    MPI_Finalize();
    return rank == 0 && !everywhere ? 1 : 0;
}
