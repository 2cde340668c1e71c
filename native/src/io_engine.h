// The I/O engine behind submitBatch: a few threads of our own that run
// batches of preadv/pwritev, and one uv_async that reports finished batches
// to the event loop.
//
// Why not libuv's thread pool: every job queued there wakes a pool thread
// (a futex wake, an IPI on a virtual machine) and, on a machine with few
// cores, the woken thread preempts the event loop. Here:
//   - a thread that is already running takes the next batch when it is done
//     with the current one, so while batches keep coming nobody is woken;
//   - another thread is woken only while the transfers are slow (they block
//     on a device, or they are large): measured per transfer, an average
//     above kSlowTransferNs spreads batches over the threads, as a thread
//     pool would; fast page-cache transfers stay on one thread;
//   - the threads run under SCHED_BATCH, so waking one never preempts the
//     event loop that woke it;
//   - completions are coalesced: uv_async_send wakes the loop at most once
//     however many batches finish meanwhile.
// Batches are plain C++ (IoJob); the threads never touch a JS value.
#pragma once

#include <napi.h>
#include <sys/uio.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace twinsan {

struct IoTransfer {
  int fd;
  uint8_t flags;  // kIoWrite | kIoFua | kIoMemory | kIoTryNowait
  uint64_t offset;
  size_t first_iov;
  size_t iov_count;
  size_t bytes;
  bool done_inline;  // already run on the submitting thread; its result is in place
};

constexpr uint8_t kIoWrite = 1;
constexpr uint8_t kIoFua = 2;
// The file is on a memory file system: the transfer is a memory copy that
// cannot block on a device, so a small one may run on the submitting thread.
constexpr uint8_t kIoMemory = 4;
// A read that may first be tried with RWF_NOWAIT on the submitting thread.
constexpr uint8_t kIoTryNowait = 8;

struct IoJob {
  std::vector<IoTransfer> transfers;
  std::vector<iovec> iov;
  // Bytes transferred or -errno, per transfer (filled by the submitting
  // thread for transfers done inline, by a worker thread for the others).
  std::vector<double> results;
  // Called on the main thread with a Float64Array of the results. It also
  // keeps the Buffers alive: the JS side's closure holds them.
  Napi::FunctionReference done;
};

class IoEngine {
 public:
  // The engine of this environment, created on first use.
  static IoEngine* For(Napi::Env env);

  // Main thread. Takes ownership of the job.
  void Submit(IoJob* job);

 private:
  explicit IoEngine(Napi::Env env);
  void Run();
  void Execute(IoJob* job);
  void WakeOrSpawnLocked();
  static void OnAsync(uv_async_t* handle);
  void DeliverDone();
  static void Cleanup(void* arg);
  static void KeepUntilCleanup(Napi::Env /*env*/, IoEngine* /*engine*/) {}

  static constexpr int64_t kSlowTransferNs = 50'000;

  napi_env env_;
  uv_async_t async_;
  napi_async_context context_ = nullptr;
  napi_ref resource_ = nullptr;
  size_t max_threads_;
  size_t inflight_ = 0;  // main thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<IoJob*> queue_;
  std::vector<std::thread> threads_;
  size_t active_ = 0;  // threads taking or running jobs
  size_t idle_ = 0;    // threads waiting for a wake token
  size_t tokens_ = 0;  // wakes handed out, not yet taken
  bool stopping_ = false;

  std::mutex done_mu_;
  std::vector<IoJob*> done_;

  // Moving average of one transfer's duration (ns); races are harmless.
  std::atomic<int64_t> transfer_ns_{0};
};

}  // namespace twinsan
