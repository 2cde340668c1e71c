// Space management: punch hole, zero range, preallocation, for files and
// block devices.
//
// Block devices: fallocate() on a block device (Linux >= 4.9) zeroes with
// unmap for PUNCH_HOLE and without for ZERO_RANGE, and either way the range
// reads back as zeros. Where the device cannot do that we fall back to the
// BLKZEROOUT ioctl. BLKDISCARD is deliberately not used: discarded sectors
// need not read back as zeros, and BackingStore.discard promises they do.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "posix_io.h"

namespace twinsan::posix {

namespace {

constexpr size_t kZeroChunk = 1 << 20;
constexpr size_t kZeroAlign = 4096;  // enough for O_DIRECT descriptors

int FallocateRetrying(int fd, int mode, uint64_t offset, uint64_t length) {
  int rc;
  do {
    rc = ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

int BlockZeroOut(int fd, uint64_t offset, uint64_t length) {
  uint64_t range[2] = {offset, length};
  return ::ioctl(fd, BLKZEROOUT, range) == 0 ? 0 : errno;
}

// Fallback for file systems without FALLOC_FL_ZERO_RANGE (tmpfs, NFS...).
int WriteZeros(int fd, uint64_t offset, uint64_t length) {
  void* raw = nullptr;
  size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, kZeroChunk));
  if (::posix_memalign(&raw, kZeroAlign, chunk) != 0) return ENOMEM;
  std::unique_ptr<void, decltype(&std::free)> zeros(raw, &std::free);
  std::memset(raw, 0, chunk);

  while (length > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(length, chunk));
    uint64_t done = 0;
    int err = PwriteFull(fd, {iovec{raw, step}}, offset, false, &done);
    if (err != 0) return err;
    offset += step;
    length -= step;
  }
  return 0;
}

bool Unsupported(int err) { return err == EOPNOTSUPP || err == ENOSYS; }

}  // namespace

int Fallocate(int fd, SpaceMode mode, uint64_t offset, uint64_t length) {
  if (length == 0) return 0;
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno;
  const bool block_device = S_ISBLK(st.st_mode);

  switch (mode) {
    case SpaceMode::kAllocate:
      // A block device is always fully provisioned.
      return block_device ? 0 : FallocateRetrying(fd, 0, offset, length);
    case SpaceMode::kPunch: {
      int err = FallocateRetrying(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
      if (block_device && Unsupported(err)) return BlockZeroOut(fd, offset, length);
      return err;
    }
    case SpaceMode::kZero: {
      int err = FallocateRetrying(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
      if (!Unsupported(err)) return err;
      return block_device ? BlockZeroOut(fd, offset, length) : WriteZeros(fd, offset, length);
    }
  }
  return EINVAL;
}

}  // namespace twinsan::posix
