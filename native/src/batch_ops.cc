// submitBatch: many preadv/pwritev transfers handed to the I/O engine
// (io_engine.h) as one job.
//
// A thread hop costs a wake-up of a worker and, on completion, a wake-up of
// the event loop; per 4 KiB request that costs more than the copy itself.
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
// of file) or -errno. Transfers run in order on one engine thread; each is
// independent: one failing does not stop the others. The caller keeps the
// Buffers alive until `done` has run (io-queue.ts: its closure holds them);
// the engine threads only see plain iovecs.
#include <napi.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "exports.h"
#include "io_engine.h"

namespace twinsan {

namespace {

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
  auto job = std::make_unique<IoJob>();
  std::vector<IoTransfer>& transfers = job->transfers;
  transfers.reserve(n);
  std::vector<iovec>& iov = job->iov;
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
    transfers.push_back(IoTransfer{fds[i], static_cast<uint8_t>(flags[i] & (kIoWrite | kIoFua)), static_cast<uint64_t>(offset), next, count});
    next += count;
  }
  job->done = Napi::Persistent(info[5].As<Napi::Function>());
  IoEngine::For(env)->Submit(job.release());
  return env.Undefined();
}

}  // namespace

void RegisterBatchOps(Napi::Env env, Napi::Object exports) {
  exports.Set("submitBatch", Napi::Function::New(env, SubmitBatch, "submitBatch"));
}

}  // namespace twinsan
