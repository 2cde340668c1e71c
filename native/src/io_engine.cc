#include "io_engine.h"

#include <sched.h>
#include <time.h>

#include <cstdlib>
#include <utility>

#include "posix_io.h"

namespace twinsan {

namespace {

// Threads at most (TWINSAN_IO_THREADS overrides; libuv's pool has 4 too).
size_t MaxThreads() {
  const char* env = std::getenv("TWINSAN_IO_THREADS");
  if (env) {
    long n = std::strtol(env, nullptr, 10);
    if (n >= 1 && n <= 64) return static_cast<size_t>(n);
  }
  return 4;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

IoEngine* IoEngine::For(Napi::Env env) {
  IoEngine* engine = env.GetInstanceData<IoEngine>();
  if (!engine) {
    engine = new IoEngine(env);
    // The engine outlives the environment's last JS call; Cleanup tears it down.
    env.SetInstanceData<IoEngine, &IoEngine::KeepUntilCleanup>(engine);
  }
  return engine;
}

IoEngine::IoEngine(Napi::Env env) : env_(env), max_threads_(MaxThreads()) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  uv_async_init(loop, &async_, &IoEngine::OnAsync);
  async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  Napi::HandleScope scope(env);
  Napi::Object resource = Napi::Object::New(env);
  napi_create_reference(env, resource, 1, &resource_);
  napi_async_init(env, resource, Napi::String::New(env, "twinsan:io"), &context_);
  napi_add_env_cleanup_hook(env, &IoEngine::Cleanup, this);
}

void IoEngine::Submit(IoJob* job) {
  if (inflight_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(job);
  // A running thread takes the job when it is done, unless transfers are slow.
  if (active_ == 0 || transfer_ns_.load(std::memory_order_relaxed) > kSlowTransferNs) WakeOrSpawnLocked();
}

void IoEngine::WakeOrSpawnLocked() {
  if (idle_ > 0) {
    idle_--;
    active_++;
    tokens_++;
    cv_.notify_one();
  } else if (threads_.size() < max_threads_) {
    active_++;
    threads_.emplace_back(&IoEngine::Run, this);
  }
}

void IoEngine::Run() {
  // Waking this thread must not preempt the event loop (see io_engine.h).
  sched_param param{};
  sched_setscheduler(0, SCHED_BATCH, &param);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!queue_.empty() && !stopping_) {
      IoJob* job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      Execute(job);
      {
        std::lock_guard<std::mutex> done_lock(done_mu_);
        done_.push_back(job);
      }
      uv_async_send(&async_);
      lock.lock();
    }
    active_--;
    if (stopping_) return;
    idle_++;
    cv_.wait(lock, [this] { return tokens_ > 0 || stopping_; });
    if (tokens_ > 0) {
      tokens_--;  // the waker already counted this thread active
    } else {
      idle_--;
      return;  // stopping
    }
  }
}

void IoEngine::Execute(IoJob* job) {
  for (size_t i = 0; i < job->transfers.size(); i++) {
    const IoTransfer& t = job->transfers[i];
    if (t.done_inline) continue;
    // The job owns its iovecs and runs each transfer once: they are consumed in place.
    iovec* iov = job->iov.data() + t.first_iov;
    uint64_t done = 0;
    int64_t start = NowNs();
    int err = (t.flags & kIoWrite) ? posix::PwriteFull(t.fd, iov, t.iov_count, t.offset, (t.flags & kIoFua) != 0, &done)
                                   : posix::PreadFull(t.fd, iov, t.iov_count, t.offset, &done);
    int64_t took = NowNs() - start;
    int64_t avg = transfer_ns_.load(std::memory_order_relaxed);
    transfer_ns_.store(avg + (took - avg) / 8, std::memory_order_relaxed);
    job->results[i] = err ? -static_cast<double>(err) : static_cast<double>(done);
  }
}

void IoEngine::OnAsync(uv_async_t* handle) { static_cast<IoEngine*>(handle->data)->DeliverDone(); }

void IoEngine::DeliverDone() {
  std::vector<IoJob*> jobs;
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    jobs.swap(done_);
  }
  if (jobs.empty()) return;
  napi_handle_scope scope;
  napi_open_handle_scope(env_, &scope);
  napi_value global;
  napi_get_global(env_, &global);
  for (IoJob* job : jobs) {
    inflight_--;
    napi_handle_scope inner;
    napi_open_handle_scope(env_, &inner);
    Napi::Float64Array results = Napi::Float64Array::New(env_, job->results.size());
    for (size_t i = 0; i < job->results.size(); i++) results[i] = job->results[i];
    napi_value argv[] = {results};
    napi_value ignored;
    napi_status status = napi_make_callback(env_, context_, global, job->done.Value(), 1, argv, &ignored);
    if (status == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env_, &error);
      napi_fatal_exception(env_, error);
    }
    napi_close_handle_scope(env_, inner);
    delete job;
  }
  napi_close_handle_scope(env_, scope);
  if (inflight_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

void IoEngine::Cleanup(void* arg) {
  IoEngine* engine = static_cast<IoEngine*>(arg);
  {
    std::lock_guard<std::mutex> lock(engine->mu_);
    engine->stopping_ = true;
  }
  engine->cv_.notify_all();
  for (std::thread& t : engine->threads_) t.join();
  // Jobs never delivered keep their references: the environment is going away.
  uv_close(reinterpret_cast<uv_handle_t*>(&engine->async_), [](uv_handle_t* handle) {
    delete static_cast<IoEngine*>(handle->data);
  });
}

}  // namespace twinsan
