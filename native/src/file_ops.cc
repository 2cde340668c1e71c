// openFile, sizeOf, close, fdatasync, ftruncate.
#include <napi.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "posix_io.h"
#include "promise_worker.h"

namespace twinsan {

namespace {

// openFile(path, {create, sizeBytes?, direct, readOnly})
//   -> {fd, created, blockDevice, sizeBytes, memoryBacked, nowaitReads}
// Synchronous: open(2) is quick and the caller needs the descriptor at once.
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  posix::OpenRequest request;
  Napi::Object options;
  if (!ArgString(info, 0, "path", &request.path) || !ArgObject(info, 1, "options", &options) ||
      !OptBool(options, "create", &request.create) || !OptBool(options, "direct", &request.direct) ||
      !OptBool(options, "readOnly", &request.read_only) ||
      !OptUint64(options, "sizeBytes", &request.has_size, &request.size_bytes)) {
    return env.Undefined();
  }
  posix::OpenResult result;
  if (int err = posix::Open(request, &result)) {
    ErrnoError(env, err, "open", request.path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, result.fd));
  out.Set("created", Napi::Boolean::New(env, result.created));
  out.Set("blockDevice", Napi::Boolean::New(env, result.block_device));
  out.Set("sizeBytes", Napi::Number::New(env, static_cast<double>(result.size_bytes)));
  out.Set("memoryBacked", Napi::Boolean::New(env, result.memory_backed));
  out.Set("nowaitReads", Napi::Boolean::New(env, result.nowait_reads));
  return out;
}

// sizeOf(fd) -> bytes. Synchronous (fstat / BLKGETSIZE64).
Napi::Value SizeOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return env.Undefined();
  uint64_t size = 0;
  bool block_device = false;
  if (int err = posix::SizeOf(fd, &size, &block_device)) {
    ErrnoError(env, err, "fstat").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(size));
}

// A worker for the calls that take a descriptor and at most one integer.
class FdWorker : public PromiseWorker {
 public:
  using Call = int (*)(int fd, uint64_t value);
  FdWorker(Napi::Env env, const char* op, Call call, int fd, uint64_t value)
      : PromiseWorker(env, op), call_(call), fd_(fd), value_(value) {}

  void Execute() override {
    if (int err = call_(fd_, value_)) Fail(err);
  }

 private:
  Call call_;
  int fd_;
  uint64_t value_;
};

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return info.Env().Undefined();
  auto call = [](int fd, uint64_t) { return posix::Close(fd); };
  return (new FdWorker(info.Env(), "close", call, fd, 0))->Start();
}

Napi::Value Fdatasync(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return info.Env().Undefined();
  auto call = [](int fd, uint64_t) { return posix::Datasync(fd); };
  return (new FdWorker(info.Env(), "fdatasync", call, fd, 0))->Start();
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int fd = -1;
  uint64_t size = 0;
  if (!ArgFd(info, 0, &fd) || !ArgUint64(info, 1, "size", &size)) return info.Env().Undefined();
  return (new FdWorker(info.Env(), "ftruncate", posix::Truncate, fd, size))->Start();
}

}  // namespace

void RegisterFileOps(Napi::Env env, Napi::Object exports) {
  exports.Set("openFile", Napi::Function::New(env, OpenFile, "openFile"));
  exports.Set("sizeOf", Napi::Function::New(env, SizeOf, "sizeOf"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("fdatasync", Napi::Function::New(env, Fdatasync, "fdatasync"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
}

}  // namespace twinsan
