/* The MPI world as every layer sees it: this process's rank, the number of ranks and the host it runs on. */
#ifndef NEM_UTIL_WORLD_H
#define NEM_UTIL_WORLD_H

typedef struct {
    int rank, size;
    char host[256];
} nem_world_t;

#endif
