#include "promise_worker.h"

#include "errors.h"

namespace twinsan {

PromiseWorker::PromiseWorker(Napi::Env env, const char* op)
    : Napi::AsyncWorker(env, op), deferred_(Napi::Promise::Deferred::New(env)), op_(op) {}

Napi::Promise PromiseWorker::Start() {
  Napi::Promise promise = deferred_.Promise();
  Queue();
  return promise;
}

void PromiseWorker::Fail(int err) {
  errno_ = err;
  SetError(op_);
}

Napi::Value PromiseWorker::Result(Napi::Env env) { return env.Undefined(); }

void PromiseWorker::OnOK() { deferred_.Resolve(Result(Env())); }

void PromiseWorker::OnError(const Napi::Error& /*error*/) {
  deferred_.Reject(ErrnoError(Env(), errno_, op_).Value());
}

}  // namespace twinsan
