#include "packet_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
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
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

void FillName(const std::string& name, ifreq* request) {
  std::memset(request, 0, sizeof(*request));
  std::memcpy(request->ifr_name, name.data(), name.size());  // size < IFNAMSIZ, checked by callers
}

Status Fail(const char* op) { return Status{errno, op}; }

// The highest descriptor OpenTap asks for (a larger fd table costs memory).
constexpr int kHighFdCeiling = 65536;

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

Status OpenTap(const std::string& name, int* fd) {
  Fd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
  if (tun.get() < 0) return Fail("open");
  ifreq req;
  FillName(name, &req);
  req.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(tun.get(), TUNSETIFF, &req) < 0) return Fail("ioctl(TUNSETIFF)");
  // At exit close_files() drops the descriptors in ascending order, but the
  // final release of each file is deferred (task work) and the queued works
  // run last-queued first, so the highest descriptor's file is released
  // first: the device, and the local routes through it, go before any
  // connection's FIN tells an initiator to reconnect. That ordering is kernel
  // internals (Linux 5.x-6.x), not a promise: a kernel that releases in
  // another order only narrows the margin, the guard still removes the
  // addresses (anchor.ts).
  rlimit limit;
  int want = kHighFdCeiling;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < static_cast<rlim_t>(want)) {
    want = static_cast<int>(limit.rlim_cur);
  }
  for (int target = want - 1; target > tun.get(); target -= 64) {
    int high = ::fcntl(tun.get(), F_DUPFD_CLOEXEC, target);
    if (high >= 0) {
      *fd = high;
      return Status{};  // tun's destructor closes the low descriptor; the device stays with `high`
    }
    if (errno != EMFILE && errno != EINVAL) return Fail("fcntl(F_DUPFD_CLOEXEC)");
  }
  *fd = tun.release();
  return Status{};
}

}  // namespace packet
}  // namespace twinsan
