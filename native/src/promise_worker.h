// Base class for every asynchronous operation.
//
// A subclass copies what it needs from the JS arguments into plain C++
// members in its constructor (main thread), does the system call in
// Execute() (worker thread, plain members only: never a JS value), and
// reports failure with Fail(errno). OnOK/OnError then settle the promise on
// the main thread. The worker is destroyed on the main thread right after,
// which is when any Napi references it holds (e.g. to Buffers) are released.
#pragma once

#include <napi.h>

#include <string>

namespace twinsan {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  // Queues the worker and returns its promise. The worker owns itself from here on.
  Napi::Promise Start();

 protected:
  PromiseWorker(Napi::Env env, const char* op);

  // From Execute(): reject with this errno.
  void Fail(int err);
  // On the main thread, after a successful Execute(): the value to resolve with.
  virtual Napi::Value Result(Napi::Env env);

 private:
  void OnOK() final;
  void OnError(const Napi::Error& error) final;

  Napi::Promise::Deferred deferred_;
  const char* op_;
  int errno_ = 0;
};

}  // namespace twinsan
