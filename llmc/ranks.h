// ranks.h: the processes of a data-parallel run and what they agree on, for the training
// program (llmc/trainer.h). Each rank is one process with one GPU; every rank holds the whole
// model, takes its own slice of every batch (llmc/dataloader.h), and applies the same update
// to the same gradient, averaged over the ranks (the CUDA trainer's NCCL all-reduce). What the
// host decides each step (the loss the step guard judges, whether a pass must be redone,
// whether to stop) is agreed here, with small MPI collectives, so that no rank takes a branch
// the others do not.
//
// Built with USE_MPI (the CUDA trainer where MPI is installed: Makefile), a program started
// by mpirun (or a launcher that sets PMI_SIZE, such as srun --mpi=pmi2) joins its job:
// ranks_start reads the rank and world size from MPI.
// Started directly, or built without MPI, it is rank 0 of 1 and never calls MPI: a single-GPU
// run needs no MPI. Rank 0 speaks for the run (the console, the logs, checkpoints); the other
// ranks' standard output goes to <log dir>/output_rank<r>.log, or nowhere without one.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef USE_MPI
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1 // only MPI's C API
#endif
#include <mpi.h>
#endif

#include "llmc/utils.h"

struct Ranks {
    int rank = 0, world = 1;
    int local = 0;    // the rank among those on its machine: which of the machine's GPUs it takes
    bool mpi = false; // MPI_Init was called
};
static Ranks g_ranks;

// ----------------------------------------------------------------------------
// start and end

// The size of the job a launcher (mpirun, srun) started this process in; 0: none.
inline int ranks_launched() {
    const char* vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (const char* v : vars) {
        if (getenv(v) != nullptr) { return atoi(getenv(v)); }
    }
    return 0;
}

#ifdef USE_MPI
inline void mpi_check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) { return; }
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    die(call, "a rank of the job failed or the launcher's network is down", "MPI error: %s", text);
}
#endif

// Joins the job when launched as one (USE_MPI builds); else rank 0 of 1.
inline void ranks_start(int* argc, char*** argv) {
#ifdef USE_MPI
    if (ranks_launched() == 0) { return; }
    mpi_check(MPI_Init(argc, argv), "MPI_Init");
    g_ranks.mpi = true;
    mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &g_ranks.rank), "MPI_Comm_rank");
    mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &g_ranks.world), "MPI_Comm_size");
    MPI_Comm machine;
    mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_ranks.rank, MPI_INFO_NULL, &machine),
              "MPI_Comm_split_type");
    mpi_check(MPI_Comm_rank(machine, &g_ranks.local), "MPI_Comm_rank");
    mpi_check(MPI_Comm_free(&machine), "MPI_Comm_free");
#else
    (void)argc;
    (void)argv;
    if (ranks_launched() > 1) { // each process would train alone, into the same files
        die("mpirun", "this build has no MPI: run it as one process, or install MPI (apt-get install libopenmpi-dev) and "
            "rebuild the CUDA trainer", "started as one of %d ranks", ranks_launched());
    }
#endif
}

inline void ranks_end() {
#ifdef USE_MPI
    if (g_ranks.mpi) { MPI_Finalize(); }
#endif
}

// This rank's file `name``ext` in dir: rank 0's is dir/name.ext, rank r's dir/name_rank<r>.ext.
inline std::string rank_file(const char* dir, const char* name, const char* ext) {
    const std::string rank = g_ranks.rank == 0 ? "" : "_rank" + std::to_string(g_ranks.rank);
    return std::string(dir) + "/" + name + rank + ext;
}

// Rank r > 0 writes its standard output to <dir>/output_rank<r>.log (nowhere without a dir), so
// that the console shows the run once.
inline void ranks_quiet_output(const char* dir) {
    if (g_ranks.rank == 0) { return; }
    if (dir != nullptr && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        die(dir, "choose a writable directory for -o", "cannot create (%s)", strerror(errno));
    }
    const std::string path = dir != nullptr ? rank_file(dir, "output", ".log") : "/dev/null";
    if (freopen(path.c_str(), "w", stdout) == nullptr) {
        die(path.c_str(), "choose a writable directory for -o", "cannot open rank %d's output", g_ranks.rank);
    }
}

// ----------------------------------------------------------------------------
// what the ranks agree on (each a collective: every rank must call it)

// The mean of x over the ranks (each rank's x from the same number of tokens).
inline double ranks_mean(double x) {
#ifdef USE_MPI
    if (g_ranks.world > 1) {
        double sum = 0.0;
        mpi_check(MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
        return sum / g_ranks.world;
    }
#endif
    return x;
}

// Whether any rank says yes.
inline bool ranks_any(bool yes) {
#ifdef USE_MPI
    if (g_ranks.world > 1) {
        int any = 0, mine = yes ? 1 : 0;
        mpi_check(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
        return any != 0;
    }
#endif
    return yes;
}

// x[i] = 1 on every rank where it is 1 on any (x: n flags, 0 or 1).
inline void ranks_union(int* x, int n) {
#ifdef USE_MPI
    if (g_ranks.world > 1) { mpi_check(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce"); }
#else
    (void)x;
    (void)n;
#endif
}

// Rank root's bytes, on every rank.
inline void ranks_share(void* bytes, int n, int root = 0) {
#ifdef USE_MPI
    if (g_ranks.world > 1) { mpi_check(MPI_Bcast(bytes, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast"); }
#else
    (void)bytes;
    (void)n;
    (void)root;
#endif
}
