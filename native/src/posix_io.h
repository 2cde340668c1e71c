// Plain system-call wrappers for block I/O. No N-API here: these run on
// worker threads. Every function returns 0 or an errno value.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace twinsan::posix {

struct OpenRequest {
  std::string path;
  bool create = false;
  bool direct = false;
  bool read_only = false;
  bool has_size = false;
  uint64_t size_bytes = 0;  // applied with ftruncate only when the file is newly created
};

struct OpenResult {
  int fd = -1;
  bool created = false;
  bool block_device = false;
  uint64_t size_bytes = 0;
  // On tmpfs or ramfs (and not O_DIRECT): a transfer is a memory copy, never device I/O.
  bool memory_backed = false;
  // preadv2(RWF_NOWAIT) is supported: a read served by the page cache can be
  // tried without risk of blocking (EAGAIN when it would wait for the device).
  bool nowait_reads = false;
};

// posix_file.cc
int Open(const OpenRequest& request, OpenResult* result);
int SizeOf(int fd, uint64_t* size_bytes, bool* block_device);
int Close(int fd);
int Datasync(int fd);
int Truncate(int fd, uint64_t size_bytes);
// lseek with SEEK_DATA or SEEK_HOLE; *position is -1 when the kernel says ENXIO.
int Seek(int fd, int whence, uint64_t offset, int64_t* position);

// posix_rw.cc. Both loop over short transfers; `iov` is consumed (its
// entries are advanced in place, so the caller's array is changed: the
// batch path hands over the job's own array and copies nothing).
// PreadFull stops early at end of file: *done tells how far it got.
int PreadFull(int fd, iovec* iov, size_t count, uint64_t offset, uint64_t* done);
int PwriteFull(int fd, iovec* iov, size_t count, uint64_t offset, bool fua, uint64_t* done);
inline int PreadFull(int fd, std::vector<iovec> iov, uint64_t offset, uint64_t* done) {
  return PreadFull(fd, iov.data(), iov.size(), offset, done);
}
inline int PwriteFull(int fd, std::vector<iovec> iov, uint64_t offset, bool fua, uint64_t* done) {
  return PwriteFull(fd, iov.data(), iov.size(), offset, fua, done);
}
// One preadv2(RWF_NOWAIT): 0 with *done the bytes read, EAGAIN when the data is
// not all in the page cache (nothing to use: *done is 0), or another errno.
int PreadNowait(int fd, const iovec* iov, int count, uint64_t offset, uint64_t* done);

// posix_space.cc
enum class SpaceMode { kPunch, kZero, kAllocate };
int Fallocate(int fd, SpaceMode mode, uint64_t offset, uint64_t length);

}  // namespace twinsan::posix
