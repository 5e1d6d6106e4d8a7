// Counts heap allocations per thread, for `wow bench alloc` (docs/architecture.md, "The data path").
//
// Build it with the Swift toolchain's clang and preload it:
//   clang -shared -fPIC -O2 -o /tmp/allocation-counter.so Scripts/allocation-counter.c
//   LD_PRELOAD=/tmp/allocation-counter.so .build/release/wow bench alloc
// Every malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign and valloc call adds one to the
// calling thread's count, then goes to glibc's own allocator (its __libc_* entry points, so there is no
// dlsym and no recursion). The bench finds `wow_allocation_count` with dlsym; without the preload it says
// so and counts nothing. glibc (Linux) only.
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

// initial-exec: a preloaded library's TLS is in the static block, so reading it never allocates.
static __thread uint64_t allocations __attribute__((tls_model("initial-exec")));

/// Allocations made by the calling thread so far.
uint64_t wow_allocation_count(void) { return allocations; }

void *malloc(size_t size) { allocations++; return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { allocations++; return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { allocations++; return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { allocations++; return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { allocations++; return __libc_memalign(alignment, size); }
void *valloc(size_t size) { allocations++; return __libc_memalign(4096, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    allocations++;
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}
