// Aligned memory for O_DIRECT: allocAligned and isAligned.
#include <napi.h>

#include <cstdint>
#include <cstdlib>

#include "args.h"
#include "exports.h"

namespace twinsan {

namespace {

constexpr uint64_t kAlignment = 4096;
constexpr uint64_t kMaxAlloc = uint64_t{1} << 32;  // 4 GiB: far above any single I/O

void FreeAligned(Napi::Env /*env*/, uint8_t* data) { std::free(data); }

// allocAligned(size) -> Buffer whose memory starts on a 4096-byte boundary.
// Contents are uninitialised. The memory is freed by the Buffer's finalizer.
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = 0;
  if (!ArgUint64(info, 0, "size", &size)) return env.Undefined();
  if (size > kMaxAlloc) {
    Napi::RangeError::New(env, "allocAligned: size too large").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* data = nullptr;
  // posix_memalign(0) may return NULL; always ask for at least one page.
  if (::posix_memalign(&data, kAlignment, size == 0 ? kAlignment : size) != 0) {
    Napi::Error::New(env, "allocAligned: out of memory").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(data), size, FreeAligned);
}

// isAligned(buffers, alignment) -> true when every buffer starts on and spans
// a multiple of `alignment` bytes (alignment: a power of two).
Napi::Value IsAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BufferArgs buffers;
  uint64_t alignment = 0;
  if (!ArgBuffers(info, 0, &buffers) || !ArgUint64(info, 1, "alignment", &alignment)) return env.Undefined();
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    Napi::RangeError::New(env, "alignment must be a power of two").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (const iovec& v : buffers.iov) {
    if ((reinterpret_cast<uintptr_t>(v.iov_base) | v.iov_len) & (alignment - 1)) {
      return Napi::Boolean::New(env, false);
    }
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void RegisterMemoryOps(Napi::Env env, Napi::Object exports) {
  exports.Set("allocAligned", Napi::Function::New(env, AllocAligned, "allocAligned"));
  exports.Set("isAligned", Napi::Function::New(env, IsAligned, "isAligned"));
}

}  // namespace twinsan
