// Vectored reads and writes that finish what they start.
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "posix_io.h"

namespace twinsan::posix {

namespace {

// Drops `n` transferred bytes from the front of iov[*first..].
void Advance(iovec* iov, size_t* first, size_t n) {
  while (n > 0) {
    iovec& head = iov[*first];
    size_t step = std::min(n, head.iov_len);
    head.iov_base = static_cast<char*>(head.iov_base) + step;
    head.iov_len -= step;
    n -= step;
    if (head.iov_len == 0) ++*first;
  }
}

void SkipEmpty(const iovec* iov, size_t count, size_t* first) {
  while (*first < count && iov[*first].iov_len == 0) ++*first;
}

int Batch(size_t count, size_t first) {
  return static_cast<int>(std::min<size_t>(count - first, IOV_MAX));
}

ssize_t WriteOnce(int fd, const iovec* iov, int count, off_t offset, bool fua, bool* need_sync) {
#ifdef RWF_DSYNC
  if (fua && !*need_sync) {
    ssize_t n = ::pwritev2(fd, iov, count, offset, RWF_DSYNC);
    if (n >= 0 || (errno != EOPNOTSUPP && errno != ENOSYS)) return n;
    *need_sync = true;  // kernel without per-write DSYNC: fdatasync at the end
  }
#else
  *need_sync = *need_sync || fua;
#endif
  return ::pwritev(fd, iov, count, offset);
}

}  // namespace

int PreadFull(int fd, iovec* iov, size_t count, uint64_t offset, uint64_t* done) {
  *done = 0;
  size_t first = 0;
  for (SkipEmpty(iov, count, &first); first < count; SkipEmpty(iov, count, &first)) {
    ssize_t n = ::preadv(fd, &iov[first], Batch(count, first), static_cast<off_t>(offset + *done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;  // end of file
    *done += static_cast<uint64_t>(n);
    Advance(iov, &first, static_cast<size_t>(n));
  }
  return 0;
}

int PwriteFull(int fd, iovec* iov, size_t count, uint64_t offset, bool fua, uint64_t* done) {
  *done = 0;
  bool need_sync = false;
  size_t first = 0;
  for (SkipEmpty(iov, count, &first); first < count; SkipEmpty(iov, count, &first)) {
    ssize_t n = WriteOnce(fd, &iov[first], Batch(count, first), static_cast<off_t>(offset + *done), fua,
                          &need_sync);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // no progress on a non-empty write: give up rather than spin
    *done += static_cast<uint64_t>(n);
    Advance(iov, &first, static_cast<size_t>(n));
  }
  return need_sync ? Datasync(fd) : 0;
}

int PreadNowait(int fd, const iovec* iov, int count, uint64_t offset, uint64_t* done) {
  *done = 0;
#ifdef RWF_NOWAIT
  ssize_t n;
  do {
    n = ::preadv2(fd, iov, count, static_cast<off_t>(offset), RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  *done = static_cast<uint64_t>(n);
  return 0;
#else
  (void)fd, (void)iov, (void)count, (void)offset;
  return EOPNOTSUPP;
#endif
}

}  // namespace twinsan::posix
