#include <cstdlib>
#include <cstring>

#include "daemon/cli/cli.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

// glibc raises its mmap threshold to the size of each large block freed, so
// after the first burst of large inputs (up to 1 MiB each) every later one is
// carved from a thread's heap arena, which keeps the memory when it is freed:
// a burst of 100 inputs of 900 KB peaked at ~200 MiB that way, ~120 MiB with
// a fixed threshold. A fixed one sends large blocks back to the system on free.
// GLIBC_TUNABLES=glibc.malloc.mmap_threshold=N still chooses another.
void keep_large_blocks_out_of_the_heap() {
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "mmap_threshold") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

}  // namespace

// A thin main: the command line and everything behind it live in libraries.
int main(int argc, char** argv) {
  keep_large_blocks_out_of_the_heap();
  return brickwork::run_cli(argc, argv);
}
