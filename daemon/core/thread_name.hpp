#pragma once
// Names the calling thread ("bw-call-3"), so top -H, perf and /proc say which
// of the daemon's threads does what. Linux keeps at most 15 characters.
#include <pthread.h>

#include <string>

namespace brickwork {

inline void name_this_thread(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace brickwork
