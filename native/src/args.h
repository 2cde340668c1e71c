// Argument checking for the exported functions. Each helper either fills its
// output and returns true, or throws a TypeError and returns false.
#pragma once

#include <napi.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace twinsan {

// Buffers for one vectored transfer: the plain iovecs a worker thread may
// use, and the references that keep the Buffers alive until it finishes.
struct BufferArgs {
  std::vector<iovec> iov;
  std::vector<Napi::ObjectReference> keep_alive;
  uint64_t total_bytes = 0;
};

bool ArgFd(const Napi::CallbackInfo& info, size_t index, int* fd);
// A non-negative safe integer (≤ 2^53 - 1).
bool ArgUint64(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t* out);
bool ArgString(const Napi::CallbackInfo& info, size_t index, const char* name, std::string* out);
bool ArgObject(const Napi::CallbackInfo& info, size_t index, const char* name, Napi::Object* out);
// An array of Buffers (any ArrayBufferView).
bool ArgBuffers(const Napi::CallbackInfo& info, size_t index, BufferArgs* out);

// Optional properties of an options object; absent or undefined keeps the default.
bool OptBool(Napi::Object object, const char* key, bool* out);
bool OptUint64(Napi::Object object, const char* key, bool* present, uint64_t* out);

}  // namespace twinsan
