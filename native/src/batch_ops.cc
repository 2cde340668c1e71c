// submitBatch: many preadv/pwritev transfers in one thread-pool job.
//
// A thread-pool hop costs a wake-up of a worker and, on completion, a wake-up
// of the event loop; per 4 KiB request that costs more than the copy itself.
// The JS side (src/block/io-queue.ts) gathers the transfers issued in one
// tick and hands them over here in one call: one job, one completion, one
// callback with every result.
//
//   submitBatch(fds: Int32Array, offsets: Float64Array, flags: Uint8Array,
//               counts: Uint32Array, buffers: Buffer[], done: (results: Float64Array) => void): void
//
// Transfer i uses the next counts[i] entries of `buffers`; flags bit 0 is
// "write", bit 1 "fua" (durable before its result is reported, as pwritev's
// fua). results[i] is the bytes transferred (a read stops early only at end
// of file) or -errno. Transfers run in order on one worker thread; each is
// independent: one failing does not stop the others. The `buffers` array is
// referenced until the callback has run, so the Buffers stay alive; the
// worker only sees plain iovecs.
#include <napi.h>
#include <sys/uio.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "errors.h"
#include "exports.h"
#include "posix_io.h"

namespace twinsan {

namespace {

constexpr uint8_t kWrite = 1;
constexpr uint8_t kFua = 2;

struct Transfer {
  int fd;
  uint8_t flags;
  uint64_t offset;
  size_t first_iov;
  size_t iov_count;
};

class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Function done, std::vector<Transfer> transfers, std::vector<iovec> iov, Napi::Array buffers)
      : Napi::AsyncWorker(done, "twinsan:submitBatch"),
        transfers_(std::move(transfers)),
        iov_(std::move(iov)),
        results_(transfers_.size(), 0.0),
        buffers_(Napi::Persistent(buffers)) {}

  void Execute() override {
    for (size_t i = 0; i < transfers_.size(); i++) {
      const Transfer& t = transfers_[i];
      std::vector<iovec> iov(iov_.begin() + static_cast<ptrdiff_t>(t.first_iov),
                             iov_.begin() + static_cast<ptrdiff_t>(t.first_iov + t.iov_count));
      uint64_t done = 0;
      int err = (t.flags & kWrite) ? posix::PwriteFull(t.fd, std::move(iov), t.offset, (t.flags & kFua) != 0, &done)
                                   : posix::PreadFull(t.fd, std::move(iov), t.offset, &done);
      results_[i] = err ? -static_cast<double>(err) : static_cast<double>(done);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Float64Array results = Napi::Float64Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) results[i] = results_[i];
    buffers_.Reset();
    Callback().Call({results});
  }

 private:
  std::vector<Transfer> transfers_;
  std::vector<iovec> iov_;
  std::vector<double> results_;
  Napi::Reference<Napi::Array> buffers_;
};

Napi::Value SubmitBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowType(env, "fds must be an Int32Array");
    return env.Undefined();
  }
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(env, "offsets must be a Float64Array");
    return env.Undefined();
  }
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "flags must be a Uint8Array");
    return env.Undefined();
  }
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowType(env, "counts must be a Uint32Array");
    return env.Undefined();
  }
  if (!info[4].IsArray()) {
    ThrowType(env, "buffers must be an array of Buffers");
    return env.Undefined();
  }
  if (!info[5].IsFunction()) {
    ThrowType(env, "done must be a function");
    return env.Undefined();
  }
  Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
  Napi::Float64Array offsets = info[1].As<Napi::Float64Array>();
  Napi::Uint8Array flags = info[2].As<Napi::Uint8Array>();
  Napi::Uint32Array counts = info[3].As<Napi::Uint32Array>();
  Napi::Array buffers = info[4].As<Napi::Array>();
  size_t n = fds.ElementLength();
  if (offsets.ElementLength() != n || flags.ElementLength() != n || counts.ElementLength() != n) {
    Napi::RangeError::New(env, "fds, offsets, flags and counts must have the same length").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t buffer_count = buffers.Length();
  std::vector<Transfer> transfers;
  transfers.reserve(n);
  std::vector<iovec> iov;
  iov.reserve(buffer_count);
  size_t next = 0;
  for (size_t i = 0; i < n; i++) {
    double offset = offsets[i];
    if (!(offset >= 0) || offset > 9007199254740991.0 || static_cast<double>(static_cast<uint64_t>(offset)) != offset) {
      ThrowType(env, "offsets must be non-negative safe integers");
      return env.Undefined();
    }
    if (fds[i] < 0) {
      ThrowType(env, "fds must be non-negative");
      return env.Undefined();
    }
    size_t count = counts[i];
    if (next + count > buffer_count) {
      Napi::RangeError::New(env, "counts name more buffers than given").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (size_t k = 0; k < count; k++) {
      Napi::Value item = buffers[static_cast<uint32_t>(next + k)];
      if (env.IsExceptionPending()) return env.Undefined();
      if (!item.IsBuffer()) {
        ThrowType(env, "buffers[" + std::to_string(next + k) + "] is not a Buffer");
        return env.Undefined();
      }
      Napi::Buffer<uint8_t> b = item.As<Napi::Buffer<uint8_t>>();
      iov.push_back(iovec{b.Data(), b.Length()});
    }
    transfers.push_back(Transfer{fds[i], flags[i], static_cast<uint64_t>(offset), next, count});
    next += count;
  }
  (new BatchWorker(info[5].As<Napi::Function>(), std::move(transfers), std::move(iov), buffers))->Queue();
  return env.Undefined();
}

}  // namespace

void RegisterBatchOps(Napi::Env env, Napi::Object exports) {
  exports.Set("submitBatch", Napi::Function::New(env, SubmitBatch, "submitBatch"));
}

}  // namespace twinsan
