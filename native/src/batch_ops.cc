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
//               counts: Uint32Array, buffers: Buffer[], done: (results: Float64Array) => void,
//               results?: Float64Array): Float64Array
//
// Transfer i uses the next counts[i] entries of `buffers`; flags bit 0 is
// "write", bit 1 "fua" (durable before its result is reported, as pwritev's
// fua), bit 2 "memory" (the file is on tmpfs/ramfs), bit 3 "try nowait" (a
// read on a file that supports RWF_NOWAIT). A result is the bytes
// transferred (a read stops early only at end of file) or -errno.
//
// Small transfers that cannot block run at once, on the calling thread:
// those on a memory file system, and reads that preadv2(RWF_NOWAIT) serves
// whole from the page cache. For them a trip through an engine thread (a
// wake-up there, one back to the event loop) costs more than the copy. At
// most kInlineTransferBytes per transfer and kInlineBatchBytes per call run
// that way, so the event loop is never held for long. A transfer runs inline
// only if no earlier transfer of the call on the same file went to the
// engine, so transfers of one call on one file still take effect in order.
//
// The returned array (`results` when given, filled from index 0; a new one
// otherwise) holds the results of the transfers done inline and NaN for the
// others; those run in order on one engine thread, and `done` is
// called with the same array layout (their results filled in) once they all
// have, unless none was left. Each transfer is independent: one failing does
// not stop the others. The caller keeps the Buffers alive until `done` has
// run (io-queue.ts: its closure holds them); the engine threads only see
// plain iovecs.
#include <napi.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "exports.h"
#include "io_engine.h"
#include "posix_io.h"

namespace twinsan {

namespace {

constexpr size_t kInlineTransferBytes = 64 * 1024;
constexpr size_t kInlineBatchBytes = 256 * 1024;

// A batch as it is parsed on the submitting thread. Kept per thread and
// reused, so a batch that runs wholly inline allocates nothing; a heap IoJob
// is made only for the transfers left to the engine.
struct Batch {
  std::vector<IoTransfer> transfers;
  std::vector<iovec> iov;
  std::vector<double> results;
};

// Runs what may run inline (see the top of this file); marks it done_inline.
// Returns how many transfers are left for the engine.
size_t RunInline(Batch* job) {
  size_t budget = kInlineBatchBytes;
  size_t left = 0;
  std::vector<int> queued_fds;
  for (size_t i = 0; i < job->transfers.size(); i++) {
    IoTransfer& t = job->transfers[i];
    bool eligible = (t.flags & (kIoMemory | kIoTryNowait)) != 0 && t.bytes <= kInlineTransferBytes && t.bytes <= budget;
    for (int fd : queued_fds) eligible = eligible && fd != t.fd;
    if (eligible) {
      iovec* iov = &job->iov[t.first_iov];
      uint64_t done = 0;
      int err;
      bool final;
      if (t.flags & kIoMemory) {
        // Run once, here, whatever the outcome: the batch's iovecs are
        // consumed in place (no copy), so it could not be retried.
        err = (t.flags & kIoWrite) ? posix::PwriteFull(t.fd, iov, t.iov_count, t.offset, (t.flags & kIoFua) != 0, &done)
                                   : posix::PreadFull(t.fd, iov, t.iov_count, t.offset, &done);
        final = true;
      } else {
        err = posix::PreadNowait(t.fd, iov, static_cast<int>(t.iov_count), t.offset, &done);
        // Only a whole read counts: anything short may be a page not yet cached.
        if (err == 0 && done < t.bytes) err = EAGAIN;
        final = err != EAGAIN && err != EOPNOTSUPP;
      }
      if (final) {
        t.done_inline = true;
        job->results[i] = err ? -static_cast<double>(err) : static_cast<double>(done);
        budget -= t.bytes;
        continue;
      }
    }
    queued_fds.push_back(t.fd);
    left++;
  }
  return left;
}

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
  // Optional: where to put the inline results (reused by the caller, so no
  // array is allocated per call); a new array otherwise.
  bool caller_results = info.Length() > 6 && !info[6].IsUndefined();
  if (caller_results && (!info[6].IsTypedArray() || info[6].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)) {
    ThrowType(env, "results must be a Float64Array");
    return env.Undefined();
  }
  if (caller_results && info[6].As<Napi::Float64Array>().ElementLength() < n) {
    Napi::RangeError::New(env, "results is shorter than the batch").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t buffer_count = buffers.Length();
  thread_local Batch batch;
  std::vector<IoTransfer>& transfers = batch.transfers;
  transfers.clear();
  transfers.reserve(n);
  std::vector<iovec>& iov = batch.iov;
  iov.clear();
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
    size_t bytes = 0;
    for (size_t k = 0; k < count; k++) {
      Napi::Value item = buffers[static_cast<uint32_t>(next + k)];
      if (env.IsExceptionPending()) return env.Undefined();
      if (!item.IsBuffer()) {
        ThrowType(env, "buffers[" + std::to_string(next + k) + "] is not a Buffer");
        return env.Undefined();
      }
      Napi::Buffer<uint8_t> b = item.As<Napi::Buffer<uint8_t>>();
      iov.push_back(iovec{b.Data(), b.Length()});
      bytes += b.Length();
    }
    uint8_t f = static_cast<uint8_t>(flags[i] & (kIoWrite | kIoFua | kIoMemory | kIoTryNowait));
    if (f & kIoWrite) f &= static_cast<uint8_t>(~kIoTryNowait);  // RWF_NOWAIT is tried for reads only
    transfers.push_back(IoTransfer{fds[i], f, static_cast<uint64_t>(offset), next, count, bytes, false});
    next += count;
  }
  batch.results.assign(n, std::numeric_limits<double>::quiet_NaN());
  size_t left = RunInline(&batch);
  Napi::Float64Array results = caller_results ? info[6].As<Napi::Float64Array>() : Napi::Float64Array::New(env, n);
  for (size_t i = 0; i < n; i++) results[i] = batch.results[i];
  if (left > 0) {
    auto job = std::make_unique<IoJob>();
    job->transfers = batch.transfers;
    job->iov = batch.iov;
    job->results = batch.results;
    job->done = Napi::Persistent(info[5].As<Napi::Function>());
    IoEngine::For(env)->Submit(job.release());
  }
  return results;
}

}  // namespace

void RegisterBatchOps(Napi::Env env, Napi::Object exports) {
  exports.Set("submitBatch", Napi::Function::New(env, SubmitBatch, "submitBatch"));
}

}  // namespace twinsan
