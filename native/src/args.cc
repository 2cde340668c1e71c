#include "args.h"

#include <cmath>
#include <string>

#include "errors.h"

namespace twinsan {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

bool ToUint64(Napi::Env env, Napi::Value value, const std::string& name, uint64_t* out) {
  if (!value.IsNumber()) return ThrowType(env, name + " must be a number");
  double v = value.As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > kMaxSafeInteger || std::floor(v) != v) {
    return ThrowType(env, name + " must be a non-negative safe integer");
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

}  // namespace

bool ArgFd(const Napi::CallbackInfo& info, size_t index, int* fd) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) return ThrowType(info.Env(), "fd must be a number");
  double v = value.As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > 2147483647.0 || std::floor(v) != v) {
    return ThrowType(info.Env(), "fd must be a non-negative 32-bit integer");
  }
  *fd = static_cast<int>(v);
  return true;
}

bool ArgUint64(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t* out) {
  return ToUint64(info.Env(), info[index], name, out);
}

bool ArgString(const Napi::CallbackInfo& info, size_t index, const char* name, std::string* out) {
  if (!info[index].IsString()) return ThrowType(info.Env(), std::string(name) + " must be a string");
  *out = info[index].As<Napi::String>().Utf8Value();
  return true;
}

bool ArgObject(const Napi::CallbackInfo& info, size_t index, const char* name, Napi::Object* out) {
  if (!info[index].IsObject()) return ThrowType(info.Env(), std::string(name) + " must be an object");
  *out = info[index].As<Napi::Object>();
  return true;
}

bool ArgBuffers(const Napi::CallbackInfo& info, size_t index, BufferArgs* out) {
  Napi::Env env = info.Env();
  if (!info[index].IsArray()) return ThrowType(env, "buffers must be an array of Buffers");
  Napi::Array array = info[index].As<Napi::Array>();
  uint32_t count = array.Length();
  out->iov.reserve(count);
  out->keep_alive.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value item = array.Get(i);
    if (env.IsExceptionPending()) return false;
    if (!item.IsBuffer()) return ThrowType(env, "buffers[" + std::to_string(i) + "] is not a Buffer");
    Napi::Buffer<uint8_t> buffer = item.As<Napi::Buffer<uint8_t>>();
    out->iov.push_back(iovec{buffer.Data(), buffer.Length()});
    out->keep_alive.push_back(Napi::Persistent(buffer.As<Napi::Object>()));
    out->total_bytes += buffer.Length();
  }
  return true;
}

bool OptBool(Napi::Object object, const char* key, bool* out) {
  Napi::Env env = object.Env();
  Napi::Value value = object.Get(key);
  if (env.IsExceptionPending()) return false;
  if (value.IsUndefined()) return true;
  if (!value.IsBoolean()) return ThrowType(env, std::string(key) + " must be a boolean");
  *out = value.As<Napi::Boolean>().Value();
  return true;
}

bool OptUint64(Napi::Object object, const char* key, bool* present, uint64_t* out) {
  Napi::Env env = object.Env();
  Napi::Value value = object.Get(key);
  if (env.IsExceptionPending()) return false;
  *present = !value.IsUndefined();
  return !*present || ToUint64(env, value, key, out);
}

}  // namespace twinsan
