// Opening, sizing, syncing and closing files and block devices.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "posix_io.h"

namespace twinsan::posix {

namespace {

int OpenRetrying(const char* path, int flags, mode_t mode) {
  int fd = -1;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

bool OnMemoryFileSystem(int fd) {
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0) return false;
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

// The kernel refuses RWF_NOWAIT up front (EOPNOTSUPP) where the file does not support it.
bool SupportsNowaitReads(int fd) {
#ifdef RWF_NOWAIT
  char byte;
  iovec iov{&byte, 1};
  ssize_t n = ::preadv2(fd, &iov, 1, 0, RWF_NOWAIT);
  return n >= 0 || errno == EAGAIN;
#else
  (void)fd;
  return false;
#endif
}

}  // namespace

int SizeOf(int fd, uint64_t* size_bytes, bool* block_device) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno;
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0) return errno;
    *size_bytes = bytes;
    *block_device = true;
    return 0;
  }
  if (!S_ISREG(st.st_mode)) return EINVAL;
  *size_bytes = static_cast<uint64_t>(st.st_size);
  *block_device = false;
  return 0;
}

int Open(const OpenRequest& request, OpenResult* result) {
  if (request.create && request.read_only) return EINVAL;
  int flags = O_CLOEXEC | (request.read_only ? O_RDONLY : O_RDWR);
  if (request.direct) flags |= O_DIRECT;
  const char* path = request.path.c_str();

  int fd = -1;
  bool created = false;
  if (request.create) {
    fd = OpenRetrying(path, flags | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      created = true;
    } else if (errno != EEXIST) {
      return errno;
    }
  }
  if (fd < 0) {
    fd = OpenRetrying(path, flags, 0);
    if (fd < 0) return errno;
  }

  int err = 0;
  if (created && request.has_size) err = Truncate(fd, request.size_bytes);
  if (err == 0) err = SizeOf(fd, &result->size_bytes, &result->block_device);
  if (err != 0) {
    ::close(fd);
    if (created) ::unlink(path);
    return err;
  }
  result->fd = fd;
  result->created = created;
  if (!request.direct) {
    result->memory_backed = !result->block_device && OnMemoryFileSystem(fd);
    result->nowait_reads = SupportsNowaitReads(fd);
  }
  return 0;
}

int Close(int fd) {
  // Never retry close on EINTR: on Linux the descriptor is already released.
  return ::close(fd) == 0 ? 0 : errno;
}

int Datasync(int fd) {
  int rc;
  do {
    rc = ::fdatasync(fd);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

int Truncate(int fd, uint64_t size_bytes) {
  int rc;
  do {
    rc = ::ftruncate(fd, static_cast<off_t>(size_bytes));
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

int Seek(int fd, int whence, uint64_t offset, int64_t* position) {
  off_t at = ::lseek(fd, static_cast<off_t>(offset), whence);
  if (at < 0) {
    if (errno != ENXIO) return errno;
    *position = -1;
    return 0;
  }
  *position = static_cast<int64_t>(at);
  return 0;
}

}  // namespace twinsan::posix
