# Builds twinsan_native: the block-I/O addon behind src/block/native.ts.
# Linux only (O_DIRECT, fallocate modes, pwritev2, block-device ioctls).
{
  "targets": [
    {
      "target_name": "twinsan_native",
      "sources": [
        "src/module.cc",
        "src/errors.cc",
        "src/args.cc",
        "src/promise_worker.cc",
        "src/posix_file.cc",
        "src/posix_rw.cc",
        "src/posix_space.cc",
        "src/file_ops.cc",
        "src/rw_ops.cc",
        "src/batch_ops.cc",
        "src/io_engine.cc",
        "src/space_ops.cc",
        "src/memory_ops.cc",
        "src/error_ops.cc",
        "src/packet_socket.cc", "src/packet_ops.cc"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3"],
      "cflags": ["-O2", "-fvisibility=hidden"],
      "cflags_cc": ["-O2", "-fvisibility=hidden"]
    }
  ]
}
