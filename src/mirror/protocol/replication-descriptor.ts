// GENERATED from replication.proto by generate-descriptor.js. Do not edit.
import type { INamespace } from 'protobufjs';

export const REPLICATION_DESCRIPTOR: INamespace = {
  "nested": {
    "twinsan": {
      "nested": {
        "mirror": {
          "nested": {
            "v1": {
              "nested": {
                "Envelope": {
                  "oneofs": {
                    "body": {
                      "oneof": [
                        "ack",
                        "write",
                        "heartbeat",
                        "flush",
                        "resyncData",
                        "writeSame",
                        "unmap",
                        "writeZeroes",
                        "hello",
                        "challenge",
                        "challengeResponse",
                        "welcome",
                        "volumeHello",
                        "resyncRequest",
                        "verifyRequest",
                        "verifyDigests",
                        "scsiState",
                        "resize",
                        "generationUpdate",
                        "control"
                      ]
                    }
                  },
                  "fields": {
                    "seq": {
                      "type": "uint64",
                      "id": 1
                    },
                    "replyTo": {
                      "type": "uint64",
                      "id": 2
                    },
                    "expectsReply": {
                      "type": "bool",
                      "id": 3
                    },
                    "ackFloor": {
                      "type": "uint64",
                      "id": 4
                    },
                    "ack": {
                      "type": "Ack",
                      "id": 5
                    },
                    "write": {
                      "type": "Write",
                      "id": 6
                    },
                    "heartbeat": {
                      "type": "Heartbeat",
                      "id": 7
                    },
                    "flush": {
                      "type": "Flush",
                      "id": 8
                    },
                    "resyncData": {
                      "type": "ResyncData",
                      "id": 9
                    },
                    "writeSame": {
                      "type": "WriteSame",
                      "id": 10
                    },
                    "unmap": {
                      "type": "Unmap",
                      "id": 11
                    },
                    "writeZeroes": {
                      "type": "WriteZeroes",
                      "id": 12
                    },
                    "hello": {
                      "type": "Hello",
                      "id": 16
                    },
                    "challenge": {
                      "type": "Challenge",
                      "id": 17
                    },
                    "challengeResponse": {
                      "type": "ChallengeResponse",
                      "id": 18
                    },
                    "welcome": {
                      "type": "Welcome",
                      "id": 19
                    },
                    "volumeHello": {
                      "type": "VolumeHello",
                      "id": 20
                    },
                    "resyncRequest": {
                      "type": "ResyncRequest",
                      "id": 21
                    },
                    "verifyRequest": {
                      "type": "VerifyRequest",
                      "id": 22
                    },
                    "verifyDigests": {
                      "type": "VerifyDigests",
                      "id": 23
                    },
                    "scsiState": {
                      "type": "ScsiState",
                      "id": 24
                    },
                    "resize": {
                      "type": "Resize",
                      "id": 25
                    },
                    "generationUpdate": {
                      "type": "GenerationUpdate",
                      "id": 26
                    },
                    "control": {
                      "type": "Control",
                      "id": 27
                    }
                  }
                },
                "Hello": {
                  "fields": {
                    "protocolMin": {
                      "type": "uint32",
                      "id": 1
                    },
                    "protocolMax": {
                      "type": "uint32",
                      "id": 2
                    },
                    "nodeId": {
                      "type": "string",
                      "id": 3
                    },
                    "clusterId": {
                      "type": "string",
                      "id": 4
                    },
                    "nonce": {
                      "type": "bytes",
                      "id": 5
                    },
                    "linkIndex": {
                      "type": "uint32",
                      "id": 6
                    },
                    "sessionId": {
                      "type": "string",
                      "id": 7
                    },
                    "features": {
                      "rule": "repeated",
                      "type": "string",
                      "id": 8
                    }
                  }
                },
                "Challenge": {
                  "fields": {
                    "hello": {
                      "type": "Hello",
                      "id": 1
                    }
                  }
                },
                "ChallengeResponse": {
                  "fields": {
                    "proof": {
                      "type": "bytes",
                      "id": 1
                    }
                  }
                },
                "Welcome": {
                  "fields": {
                    "protocolVersion": {
                      "type": "uint32",
                      "id": 1
                    },
                    "features": {
                      "rule": "repeated",
                      "type": "string",
                      "id": 2
                    },
                    "proof": {
                      "type": "bytes",
                      "id": 3
                    }
                  }
                },
                "Heartbeat": {
                  "fields": {
                    "sentAtMs": {
                      "type": "uint64",
                      "id": 1
                    },
                    "seq": {
                      "type": "uint64",
                      "id": 2
                    },
                    "echo": {
                      "type": "bool",
                      "id": 3
                    }
                  }
                },
                "Ack": {
                  "fields": {
                    "ok": {
                      "type": "bool",
                      "id": 1
                    },
                    "code": {
                      "type": "string",
                      "id": 2
                    },
                    "message": {
                      "type": "string",
                      "id": 3
                    }
                  }
                },
                "Generations": {
                  "fields": {
                    "current": {
                      "type": "string",
                      "id": 1
                    },
                    "bitmap": {
                      "type": "string",
                      "id": 2
                    },
                    "history": {
                      "rule": "repeated",
                      "type": "string",
                      "id": 3
                    }
                  }
                },
                "Role": {
                  "values": {
                    "ROLE_UNSPECIFIED": 0,
                    "ROLE_PRIMARY": 1,
                    "ROLE_SECONDARY": 2
                  }
                },
                "ByteRange": {
                  "fields": {
                    "offset": {
                      "type": "uint64",
                      "id": 1
                    },
                    "length": {
                      "type": "uint64",
                      "id": 2
                    }
                  }
                },
                "VolumeHello": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "sizeBytes": {
                      "type": "uint64",
                      "id": 2
                    },
                    "regionSize": {
                      "type": "uint32",
                      "id": 3
                    },
                    "generations": {
                      "type": "Generations",
                      "id": 4
                    },
                    "role": {
                      "type": "Role",
                      "id": 5
                    },
                    "dirtyBytes": {
                      "type": "uint64",
                      "id": 6
                    },
                    "blockSize": {
                      "type": "uint32",
                      "id": 7
                    }
                  }
                },
                "Write": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "length": {
                      "type": "uint32",
                      "id": 3
                    },
                    "fua": {
                      "type": "bool",
                      "id": 4
                    }
                  }
                },
                "WriteSame": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "length": {
                      "type": "uint64",
                      "id": 3
                    },
                    "unmap": {
                      "type": "bool",
                      "id": 4
                    }
                  }
                },
                "Unmap": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "length": {
                      "type": "uint64",
                      "id": 3
                    }
                  }
                },
                "WriteZeroes": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "length": {
                      "type": "uint64",
                      "id": 3
                    },
                    "unmap": {
                      "type": "bool",
                      "id": 4
                    }
                  }
                },
                "Flush": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    }
                  }
                },
                "ResyncRequest": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "ranges": {
                      "rule": "repeated",
                      "type": "ByteRange",
                      "id": 2
                    }
                  }
                },
                "ResyncData": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "length": {
                      "type": "uint32",
                      "id": 3
                    }
                  }
                },
                "VerifyRequest": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "length": {
                      "type": "uint64",
                      "id": 3
                    },
                    "regionSize": {
                      "type": "uint32",
                      "id": 4
                    },
                    "algorithm": {
                      "type": "string",
                      "id": 5
                    }
                  }
                },
                "VerifyDigests": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "offset": {
                      "type": "uint64",
                      "id": 2
                    },
                    "regionSize": {
                      "type": "uint32",
                      "id": 3
                    },
                    "algorithm": {
                      "type": "string",
                      "id": 4
                    },
                    "digests": {
                      "type": "bytes",
                      "id": 5
                    }
                  }
                },
                "ScsiState": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "kind": {
                      "type": "string",
                      "id": 2
                    },
                    "json": {
                      "type": "bytes",
                      "id": 3
                    },
                    "version": {
                      "type": "uint64",
                      "id": 4
                    }
                  }
                },
                "Resize": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "sizeBytes": {
                      "type": "uint64",
                      "id": 2
                    }
                  }
                },
                "GenerationUpdate": {
                  "fields": {
                    "volumeId": {
                      "type": "string",
                      "id": 1
                    },
                    "generations": {
                      "type": "Generations",
                      "id": 2
                    },
                    "reason": {
                      "type": "string",
                      "id": 3
                    }
                  }
                },
                "Control": {
                  "fields": {
                    "topic": {
                      "type": "string",
                      "id": 1
                    },
                    "data": {
                      "type": "bytes",
                      "id": 2
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
};
