// interfaceInfo(ifname) and packetSend(ifname, frame): the link layer of the
// alias-IP announcer (gratuitous ARP, unsolicited neighbour advertisements);
// tapOpen(ifname): the process-bound device an alias's local route goes through.
//
// Both run synchronously on the main thread. interfaceInfo is three ioctls;
// packetSend is one socket(2), one non-blocking sendto(2) of a frame of at
// most MTU + 14 bytes and one close(2), for the handful of frames an
// announcement sends. Neither can block, so a thread-pool job would cost more
// than the work.
#include "packet_ops.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "args.h"
#include "errors.h"
#include "packet_socket.h"

namespace twinsan {

namespace {

// Network errnos that errors.cc's block-I/O table does not name.
const char* NetErrnoName(int err) {
  switch (err) {
    case ENETDOWN: return "ENETDOWN";
    case ENOBUFS: return "ENOBUFS";
    case EMSGSIZE: return "EMSGSIZE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    default: return nullptr;
  }
}

// The same shape as ErrnoError (code, errno, syscall, message "CODE: text,
// op 'ifname'"), with the network errnos named too. Main thread only.
Napi::Error PacketError(Napi::Env env, const packet::Status& status, const std::string& ifname) {
  const char* net_name = NetErrnoName(status.err);
  if (net_name == nullptr) return ErrnoError(env, status.err, status.op, ifname);
  std::string message = std::string(net_name) + ": " + std::strerror(status.err) + ", " + status.op + " '" + ifname + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, net_name));
  error.Set("errno", Napi::Number::New(env, status.err));
  error.Set("syscall", Napi::String::New(env, status.op));
  error.Set("path", Napi::String::New(env, ifname));
  return error;
}

bool ArgInterfaceName(const Napi::CallbackInfo& info, size_t index, std::string* out) {
  if (!ArgString(info, index, "ifname", out)) return false;
  if (!packet::ValidInterfaceName(*out)) {
    Napi::RangeError::New(info.Env(), "ifname must be 1-15 characters without '/', ':' or spaces")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

std::string FormatMac(const uint8_t* mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return text;
}

// interfaceInfo(ifname) -> { index, mac: "aa:bb:cc:dd:ee:ff", mtu, hwType }
Napi::Value InterfaceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  if (!ArgInterfaceName(info, 0, &ifname)) return env.Undefined();
  packet::InterfaceInfo result;
  packet::Status status = packet::QueryInterface(ifname, &result);
  if (status.err != 0) {
    PacketError(env, status, ifname).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("index", Napi::Number::New(env, result.index));
  out.Set("mac", Napi::String::New(env, FormatMac(result.mac)));
  out.Set("mtu", Napi::Number::New(env, result.mtu));
  out.Set("hwType", Napi::Number::New(env, result.hw_type));
  return out;
}

// packetSend(ifname, frame: Buffer) -> bytes sent (the whole frame).
Napi::Value PacketSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  if (!ArgInterfaceName(info, 0, &ifname)) return env.Undefined();
  if (!info[1].IsBuffer()) {
    ThrowType(env, "frame must be a Buffer");
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> frame = info[1].As<Napi::Buffer<uint8_t>>();
  if (frame.Length() < 14) {
    Napi::RangeError::New(env, "frame must hold at least an Ethernet header (14 bytes)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t sent = 0;
  packet::Status status = packet::SendFrame(ifname, frame.Data(), frame.Length(), &sent);
  if (status.err != 0) {
    PacketError(env, status, ifname).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(sent));
}

// tapOpen(ifname) -> fd: a TAP device that lives as long as this process
// holds the descriptor (packet_socket.h OpenTap). The caller closes it.
Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  if (!ArgInterfaceName(info, 0, &ifname)) return env.Undefined();
  int fd = -1;
  packet::Status status = packet::OpenTap(ifname, &fd);
  if (status.err != 0) {
    PacketError(env, status, ifname).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

void RegisterPacketOps(Napi::Env env, Napi::Object exports) {
  exports.Set("interfaceInfo", Napi::Function::New(env, InterfaceInfo, "interfaceInfo"));
  exports.Set("packetSend", Napi::Function::New(env, PacketSend, "packetSend"));
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
}

}  // namespace twinsan
