// interfaceInfo and packetSend (packet_ops.cc); module.cc registers them.
#pragma once

#include <napi.h>

namespace twinsan {

void RegisterPacketOps(Napi::Env env, Napi::Object exports);  // packet_ops.cc

}  // namespace twinsan
