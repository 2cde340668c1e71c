// makeErrnoError: exposes the native error shaping so tests can pin it.
#include <napi.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace twinsan {

namespace {

// makeErrnoError(errno, op) -> Error, the same object a failing call rejects with.
Napi::Value MakeErrnoError(const Napi::CallbackInfo& info) {
  uint64_t err = 0;
  std::string op;
  if (!ArgUint64(info, 0, "errno", &err) || !ArgString(info, 1, "op", &op)) return info.Env().Undefined();
  return ErrnoError(info.Env(), static_cast<int>(err), op).Value();
}

}  // namespace

void RegisterErrorOps(Napi::Env env, Napi::Object exports) {
  exports.Set("makeErrnoError", Napi::Function::New(env, MakeErrnoError, "makeErrnoError"));
}

}  // namespace twinsan
