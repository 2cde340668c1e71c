#include "errors.h"

#include <cerrno>
#include <cstring>

namespace twinsan {

namespace {

struct ErrnoEntry {
  int value;
  const char* name;
};

// The errors block I/O can produce. A table (not a switch) because some names
// share a value on Linux (EAGAIN/EWOULDBLOCK, EOPNOTSUPP/ENOTSUP).
const ErrnoEntry kErrnoNames[] = {
    {EPERM, "EPERM"},         {ENOENT, "ENOENT"},       {EINTR, "EINTR"},
    {EIO, "EIO"},             {ENXIO, "ENXIO"},         {E2BIG, "E2BIG"},
    {EBADF, "EBADF"},         {EAGAIN, "EAGAIN"},       {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},       {EFAULT, "EFAULT"},       {ENOTBLK, "ENOTBLK"},
    {EBUSY, "EBUSY"},         {EEXIST, "EEXIST"},       {EXDEV, "EXDEV"},
    {ENODEV, "ENODEV"},       {ENOTDIR, "ENOTDIR"},     {EISDIR, "EISDIR"},
    {EINVAL, "EINVAL"},       {ENFILE, "ENFILE"},       {EMFILE, "EMFILE"},
    {ENOTTY, "ENOTTY"},       {ETXTBSY, "ETXTBSY"},     {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},       {ESPIPE, "ESPIPE"},       {EROFS, "EROFS"},
    {EMLINK, "EMLINK"},       {ERANGE, "ERANGE"},       {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOSYS, "ENOSYS"},       {ELOOP, "ELOOP"},         {EOVERFLOW, "EOVERFLOW"},
    {EOPNOTSUPP, "EOPNOTSUPP"}, {ETIMEDOUT, "ETIMEDOUT"}, {EDQUOT, "EDQUOT"},
    {ENOLINK, "ENOLINK"},     {ENOMEDIUM, "ENOMEDIUM"}, {EMEDIUMTYPE, "EMEDIUMTYPE"},
    {EREMOTEIO, "EREMOTEIO"}, {ECANCELED, "ECANCELED"}, {ENOTCONN, "ENOTCONN"},
    {ESTALE, "ESTALE"},       {EILSEQ, "EILSEQ"},
};

}  // namespace

const char* ErrnoName(int err) {
  for (const ErrnoEntry& entry : kErrnoNames) {
    if (entry.value == err) return entry.name;
  }
  return "EUNKNOWN";
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op, const std::string& path) {
  const char* name = ErrnoName(err);
  // strerror is not thread-safe, but this runs on the main thread only.
  std::string message = std::string(name) + ": " + std::strerror(err) + ", " + op;
  if (!path.empty()) message += " '" + path + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, op));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  return error;
}

bool ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

}  // namespace twinsan
