// preadv and pwritev over arrays of Buffers.
#include <napi.h>

#include <utility>

#include "args.h"
#include "exports.h"
#include "posix_io.h"
#include "promise_worker.h"

namespace twinsan {

namespace {

// Resolves with the number of bytes transferred. The Buffers stay referenced
// (BufferArgs::keep_alive) until the worker is destroyed on the main thread;
// Execute() only sees the plain iovec copies.
class TransferWorker : public PromiseWorker {
 public:
  TransferWorker(Napi::Env env, bool write, int fd, BufferArgs buffers, uint64_t offset, bool fua)
      : PromiseWorker(env, write ? "pwritev" : "preadv"),
        write_(write),
        fd_(fd),
        fua_(fua),
        offset_(offset),
        buffers_(std::move(buffers)) {}

  void Execute() override {
    int err = write_ ? posix::PwriteFull(fd_, buffers_.iov, offset_, fua_, &done_)
                     : posix::PreadFull(fd_, buffers_.iov, offset_, &done_);
    if (err) Fail(err);
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(done_)); }

 private:
  const bool write_;
  const int fd_;
  const bool fua_;
  const uint64_t offset_;
  BufferArgs buffers_;
  uint64_t done_ = 0;
};

// preadv(fd, buffers, offset) -> Promise<bytesRead>; fewer than asked only at end of file.
Napi::Value Preadv(const Napi::CallbackInfo& info) {
  int fd = -1;
  BufferArgs buffers;
  uint64_t offset = 0;
  if (!ArgFd(info, 0, &fd) || !ArgBuffers(info, 1, &buffers) || !ArgUint64(info, 2, "offset", &offset)) {
    return info.Env().Undefined();
  }
  return (new TransferWorker(info.Env(), false, fd, std::move(buffers), offset, false))->Start();
}

// pwritev(fd, buffers, offset, {fua}) -> Promise<bytesWritten>
Napi::Value Pwritev(const Napi::CallbackInfo& info) {
  int fd = -1;
  BufferArgs buffers;
  uint64_t offset = 0;
  Napi::Object flags;
  bool fua = false;
  if (!ArgFd(info, 0, &fd) || !ArgBuffers(info, 1, &buffers) || !ArgUint64(info, 2, "offset", &offset) ||
      !ArgObject(info, 3, "flags", &flags) || !OptBool(flags, "fua", &fua)) {
    return info.Env().Undefined();
  }
  return (new TransferWorker(info.Env(), true, fd, std::move(buffers), offset, fua))->Start();
}

}  // namespace

void RegisterRwOps(Napi::Env env, Napi::Object exports) {
  exports.Set("preadv", Napi::Function::New(env, Preadv, "preadv"));
  exports.Set("pwritev", Napi::Function::New(env, Pwritev, "pwritev"));
}

}  // namespace twinsan
