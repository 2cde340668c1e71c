// One registration function per group of exported functions; module.cc calls them all.
#pragma once

#include <napi.h>

namespace twinsan {

void RegisterFileOps(Napi::Env env, Napi::Object exports);    // file_ops.cc
void RegisterRwOps(Napi::Env env, Napi::Object exports);      // rw_ops.cc
void RegisterBatchOps(Napi::Env env, Napi::Object exports);   // batch_ops.cc
void RegisterSpaceOps(Napi::Env env, Napi::Object exports);   // space_ops.cc
void RegisterMemoryOps(Napi::Env env, Napi::Object exports);  // memory_ops.cc
void RegisterErrorOps(Napi::Env env, Napi::Object exports);   // error_ops.cc

}  // namespace twinsan
