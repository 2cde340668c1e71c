// Link-layer plumbing for the alias-IP announcer (src/alias-ip): interface
// lookup by ioctl and one-frame sends on an AF_PACKET socket. Plain POSIX, no
// N-API; packet_ops.cc wraps it for JavaScript.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace twinsan {
namespace packet {

// The outcome of a call: err is 0 on success, else a positive errno and op
// names the system call that failed ("socket", "ioctl(SIOCGIFINDEX)", ...).
struct Status {
  int err = 0;
  const char* op = "";
};

struct InterfaceInfo {
  int index = 0;
  uint16_t hw_type = 0;   // ARPHRD_*, 1 (ARPHRD_ETHER) for Ethernet and veth
  uint8_t mac[6] = {};    // first six bytes of the hardware address
  int mtu = 0;
};

// True for a name the kernel could accept: 1..15 bytes, no '/', ':' or space.
bool ValidInterfaceName(const std::string& name);

// SIOCGIFINDEX, SIOCGIFHWADDR and SIOCGIFMTU on `name`, in the caller's
// network namespace. No privilege needed.
Status QueryInterface(const std::string& name, InterfaceInfo* out);

// Sends one complete Ethernet frame (destination MAC first, EtherType at
// bytes 12-13) out of `name` through a SOCK_RAW AF_PACKET socket opened for
// this call only (protocol 0: it never receives). MSG_DONTWAIT, so it never
// blocks: a full transmit queue is EAGAIN/ENOBUFS. Needs CAP_NET_RAW.
Status SendFrame(const std::string& name, const uint8_t* frame, size_t length, size_t* sent);

// Creates the TAP device `name` bound to this process: /dev/net/tun opened
// O_CLOEXEC (no child keeps it) and TUNSETIFF without TUNSETPERSIST, so the
// kernel deletes the device, and every route through it, when the returned
// descriptor closes, at the latest when the process dies, SIGKILL included.
// Nothing is ever read from it. Needs CAP_NET_ADMIN.
Status OpenTap(const std::string& name, int* fd);

}  // namespace packet
}  // namespace twinsan
