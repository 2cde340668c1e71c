#include "packet_socket.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace twinsan {
namespace packet {

namespace {

constexpr size_t kEthHeaderLen = 14;
constexpr size_t kMacLen = 6;

// Closes the descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void FillName(const std::string& name, ifreq* request) {
  std::memset(request, 0, sizeof(*request));
  std::memcpy(request->ifr_name, name.data(), name.size());  // size < IFNAMSIZ, checked by callers
}

Status Fail(const char* op) { return Status{errno, op}; }

}  // namespace

bool ValidInterfaceName(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c == '\0' || c == ' ' || c == '\t' || c == '\n') return false;
  }
  return name != "." && name != "..";
}

Status QueryInterface(const std::string& name, InterfaceInfo* out) {
  // Any socket answers the SIOCGIF* requests; a datagram one needs no privilege.
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return Fail("socket");

  ifreq request;
  FillName(name, &request);
  if (::ioctl(sock.get(), SIOCGIFINDEX, &request) < 0) return Fail("ioctl(SIOCGIFINDEX)");
  out->index = request.ifr_ifindex;

  FillName(name, &request);
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &request) < 0) return Fail("ioctl(SIOCGIFHWADDR)");
  out->hw_type = request.ifr_hwaddr.sa_family;
  std::memcpy(out->mac, request.ifr_hwaddr.sa_data, kMacLen);

  FillName(name, &request);
  if (::ioctl(sock.get(), SIOCGIFMTU, &request) < 0) return Fail("ioctl(SIOCGIFMTU)");
  out->mtu = request.ifr_mtu;
  return Status{};
}

Status SendFrame(const std::string& name, const uint8_t* frame, size_t length, size_t* sent) {
  *sent = 0;
  if (length < kEthHeaderLen) return Status{EINVAL, "sendto"};

  unsigned int index = ::if_nametoindex(name.c_str());
  if (index == 0) return Fail("if_nametoindex");

  // Protocol 0: the socket is bound to no EtherType, so nothing is queued for
  // reading while it is open.
  Fd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return Fail("socket");

  sockaddr_ll to;
  std::memset(&to, 0, sizeof(to));
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(index);
  to.sll_halen = kMacLen;
  std::memcpy(to.sll_addr, frame, kMacLen);
  uint16_t ethertype = 0;
  std::memcpy(&ethertype, frame + 12, sizeof(ethertype));  // already network order
  to.sll_protocol = ethertype;

  ssize_t n = ::sendto(sock.get(), frame, length, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  if (n < 0) return Fail("sendto");
  *sent = static_cast<size_t>(n);
  // A packet socket sends a frame whole or not at all.
  if (*sent != length) return Status{EMSGSIZE, "sendto"};
  return Status{};
}

}  // namespace packet
}  // namespace twinsan
