// Module entry point: registers the exports, nothing else.
#include <napi.h>

#include "exports.h"
#include "packet_ops.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  twinsan::RegisterFileOps(env, exports);
  twinsan::RegisterRwOps(env, exports);
  twinsan::RegisterBatchOps(env, exports);
  twinsan::RegisterSpaceOps(env, exports);
  twinsan::RegisterMemoryOps(env, exports);
  twinsan::RegisterErrorOps(env, exports);
  twinsan::RegisterPacketOps(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(twinsan_native, Init)
