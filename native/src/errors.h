// Errno errors as JavaScript Error objects: { code: 'ENOSPC', errno: 28, syscall }.
#pragma once

#include <napi.h>

#include <string>

namespace twinsan {

// The symbolic name of an errno value ("EIO"), or "EUNKNOWN".
const char* ErrnoName(int err);

// A JS Error for a failed operation, shaped like Node's own system errors:
// message "ENOSPC: No space left on device, pwritev", properties code,
// errno (positive), syscall and, when given, path. Main thread only.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op, const std::string& path = "");

// Throws a TypeError for a bad argument and returns false, for `return ThrowType(...)`.
bool ThrowType(Napi::Env env, const std::string& message);

}  // namespace twinsan
