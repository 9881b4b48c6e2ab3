// ThreadSanitizer builds only. librdkafka runs its threads, mutexes and
// condition variables through C11 <threads.h>, which glibc implements without
// going through the pthread functions TSan intercepts: its threads would be
// unknown to TSan (and crash in its allocator) and its locks invisible. These
// definitions take precedence over glibc's for every library in the process
// and forward to the intercepted pthread calls. Types match glibc's layout:
// thrd_t is pthread_t, mtx_t is pthread_mutex_t, cnd_t is pthread_cond_t.
#include <pthread.h>

#include <cerrno>
#include <cstdint>
#include <ctime>

namespace {

enum { kThrdSuccess = 0, kThrdBusy = 1, kThrdError = 2, kThrdNomem = 3, kThrdTimedout = 4 };
enum { kMtxRecursive = 1 };

using ThreadStart = int (*)(void*);

struct Start {
  ThreadStart function;
  void* argument;
};

void* trampoline(void* raw) {
  const Start start = *static_cast<Start*>(raw);
  delete static_cast<Start*>(raw);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.function(start.argument)));
}

int to_thrd(int rc) {
  switch (rc) {
    case 0: return kThrdSuccess;
    case EBUSY: return kThrdBusy;
    case ETIMEDOUT: return kThrdTimedout;
    case ENOMEM: return kThrdNomem;
    default: return kThrdError;
  }
}

}  // namespace

extern "C" {

int thrd_create(pthread_t* thread, ThreadStart function, void* argument) {
  auto* start = new Start{function, argument};
  const int rc = pthread_create(thread, nullptr, trampoline, start);
  if (rc != 0) delete start;
  return rc == EAGAIN ? kThrdNomem : to_thrd(rc);
}

int thrd_join(pthread_t thread, int* result) {
  void* value = nullptr;
  const int rc = pthread_join(thread, &value);
  if (rc == 0 && result != nullptr) *result = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return to_thrd(rc);
}

int thrd_detach(pthread_t thread) { return to_thrd(pthread_detach(thread)); }

int mtx_init(pthread_mutex_t* mutex, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if ((type & kMtxRecursive) != 0) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int rc = pthread_mutex_init(mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return to_thrd(rc);
}
int mtx_lock(pthread_mutex_t* mutex) { return to_thrd(pthread_mutex_lock(mutex)); }
int mtx_trylock(pthread_mutex_t* mutex) { return to_thrd(pthread_mutex_trylock(mutex)); }
int mtx_timedlock(pthread_mutex_t* mutex, const timespec* until) {
  return to_thrd(pthread_mutex_timedlock(mutex, until));
}
int mtx_unlock(pthread_mutex_t* mutex) { return to_thrd(pthread_mutex_unlock(mutex)); }
void mtx_destroy(pthread_mutex_t* mutex) { pthread_mutex_destroy(mutex); }

int cnd_init(pthread_cond_t* cond) { return to_thrd(pthread_cond_init(cond, nullptr)); }
int cnd_signal(pthread_cond_t* cond) { return to_thrd(pthread_cond_signal(cond)); }
int cnd_broadcast(pthread_cond_t* cond) { return to_thrd(pthread_cond_broadcast(cond)); }
int cnd_wait(pthread_cond_t* cond, pthread_mutex_t* mutex) {
  return to_thrd(pthread_cond_wait(cond, mutex));
}
int cnd_timedwait(pthread_cond_t* cond, pthread_mutex_t* mutex, const timespec* until) {
  return to_thrd(pthread_cond_timedwait(cond, mutex, until));
}
void cnd_destroy(pthread_cond_t* cond) { pthread_cond_destroy(cond); }

void call_once(pthread_once_t* flag, void (*function)()) { pthread_once(flag, function); }

}  // extern "C"
