// fallocate (punch / zero / allocate), seekData and seekHole.
#include <napi.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "posix_io.h"
#include "promise_worker.h"

namespace twinsan {

namespace {

class FallocateWorker : public PromiseWorker {
 public:
  FallocateWorker(Napi::Env env, int fd, posix::SpaceMode mode, uint64_t offset, uint64_t length)
      : PromiseWorker(env, "fallocate"), fd_(fd), mode_(mode), offset_(offset), length_(length) {}

  void Execute() override {
    if (int err = posix::Fallocate(fd_, mode_, offset_, length_)) Fail(err);
  }

 private:
  const int fd_;
  const posix::SpaceMode mode_;
  const uint64_t offset_;
  const uint64_t length_;
};

class SeekWorker : public PromiseWorker {
 public:
  SeekWorker(Napi::Env env, const char* op, int fd, int whence, uint64_t offset)
      : PromiseWorker(env, op), fd_(fd), whence_(whence), offset_(offset) {}

  void Execute() override {
    if (int err = posix::Seek(fd_, whence_, offset_, &position_)) Fail(err);
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(position_)); }

 private:
  const int fd_;
  const int whence_;
  const uint64_t offset_;
  int64_t position_ = -1;
};

bool ArgSpaceMode(const Napi::CallbackInfo& info, size_t index, posix::SpaceMode* mode) {
  std::string name;
  if (!ArgString(info, index, "mode", &name)) return false;
  if (name == "punch") {
    *mode = posix::SpaceMode::kPunch;
  } else if (name == "zero") {
    *mode = posix::SpaceMode::kZero;
  } else if (name == "allocate") {
    *mode = posix::SpaceMode::kAllocate;
  } else {
    return ThrowType(info.Env(), "mode must be 'punch', 'zero' or 'allocate'");
  }
  return true;
}

// fallocate(fd, mode, offset, length) -> Promise<void>
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  int fd = -1;
  posix::SpaceMode mode = posix::SpaceMode::kAllocate;
  uint64_t offset = 0, length = 0;
  if (!ArgFd(info, 0, &fd) || !ArgSpaceMode(info, 1, &mode) || !ArgUint64(info, 2, "offset", &offset) ||
      !ArgUint64(info, 3, "length", &length)) {
    return info.Env().Undefined();
  }
  return (new FallocateWorker(info.Env(), fd, mode, offset, length))->Start();
}

// seekData / seekHole(fd, offset) -> Promise<position | -1 (ENXIO: nothing further)>
template <int kWhence>
Napi::Value Seek(const Napi::CallbackInfo& info) {
  int fd = -1;
  uint64_t offset = 0;
  if (!ArgFd(info, 0, &fd) || !ArgUint64(info, 1, "offset", &offset)) return info.Env().Undefined();
  const char* op = kWhence == SEEK_DATA ? "lseek(SEEK_DATA)" : "lseek(SEEK_HOLE)";
  return (new SeekWorker(info.Env(), op, fd, kWhence, offset))->Start();
}

}  // namespace

void RegisterSpaceOps(Napi::Env env, Napi::Object exports) {
  exports.Set("fallocate", Napi::Function::New(env, Fallocate, "fallocate"));
  exports.Set("seekData", Napi::Function::New(env, Seek<SEEK_DATA>, "seekData"));
  exports.Set("seekHole", Napi::Function::New(env, Seek<SEEK_HOLE>, "seekHole"));
}

}  // namespace twinsan
