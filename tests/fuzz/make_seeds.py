#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets (tests/fuzz/corpus/*).

Run once when the protocol changes; the seeds are committed. Messages are
encoded from text with `capnp encode` (the capnproto package).

  control/  the byte stream a client sends the zygote: u32 length + flat
            message per frame, several frames per input
  request/  u64 claimed length + the request area a client writes
"""
import struct
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA = HERE.parents[1] / "ipc" / "protocol.capnp"


def encode(struct_name: str, text: str) -> bytes:
    return subprocess.run(["capnp", "encode", "-I/usr/include", str(SCHEMA), struct_name],
                          input=text.encode(), capture_output=True, check=True).stdout


def frame(message: bytes) -> bytes:
    return struct.pack("<I", len(message)) + message


def control(*texts: str) -> bytes:
    return b"".join(frame(encode("ControlRequest", t)) for t in texts)


# The stub zygote's backend and action-table hash (control_fuzzer.cc): the
# server refuses any other, so a hello without it would end every seed at once.
HELLO = '(hello = (protocolVersion = 2, backends = [(name = "llvm", actionTableHash = 0x0123456789abcdef)]))'
DESCRIBE = '(describeBackend = "llvm")'
control_seeds = {
    "hello": control(HELLO),
    "hello_describe": control(HELLO, DESCRIBE),
    "hello_describe_unknown": control(HELLO, '(describeBackend = "nope")'),
    "hello_describe_obsolete": control(HELLO, "(obsoleteDescribe = void)"),
    "hello_session": control(HELLO, '(newSession = (backend = "llvm", benchmark = "file:///abs/prog.c", '
                                    "limits = (addressSpaceMb = 1024, cpuSecondsPerStep = 5)))"),
    "hello_session_no_backend": control(HELLO, '(newSession = (benchmark = "file:///abs/prog.c"))'),
    "hello_worker_exit": control(HELLO, "(workerExit = 123)"),
    "hello_status": control(HELLO, "(status = void)"),
    "hello_all": control(HELLO, DESCRIBE, '(newSession = (backend = "llvm", benchmark = "generator://csmith-v0/1"))',
                         "(workerExit = 9)"),
    "hello_other_table": control('(hello = (protocolVersion = 2, backends = [(name = "llvm", actionTableHash = 7)]))'),
    "wrong_version": control('(hello = (protocolVersion = 999, backends = [(name = "llvm", actionTableHash = 7)]))'),
    "describe_before_hello": control(DESCRIBE, HELLO),
    "truncated": control(HELLO, DESCRIBE)[:-5],
    "oversized_length": struct.pack("<I", 0xFFFFFFF8) + b"\0" * 16,
    "odd_length": struct.pack("<I", 13) + b"\1" * 13,
    # A segment table claiming a huge segment.
    "huge_segment": frame(struct.pack("<II", 0, 0x7FFFFFFF) + b"\0" * 8),
    # A root struct pointer, then a list pointer claiming 2^29 elements.
    "huge_list": control(HELLO) + frame(struct.pack("<II", 0, 3) + struct.pack("<Q", 0x0001000000000000)
                                         + struct.pack("<Q", 0) + struct.pack("<II", 0x1, (0xFFFFFFF << 3) | 5)),
}

request_seeds = {
    "step": encode("Request", '(step = (actions = [1, 2, 53], observations = ["IrInstructionCount", "Autophase"], '
                              'rewards = ["IrInstructionCountOz"]))'),
    "step_empty": encode("Request", "(step = ())"),
    "step_unknown_names": encode("Request", '(step = (observations = ["NoSuch"], rewards = ["Nope"]))'),
    "step_bad_action": encode("Request", "(step = (actions = [4000000000]))"),
    "fork": encode("Request", "(fork = void)"),
    "test_syscall": encode("Request", "(testSyscall = 2)"),
    "test_close": encode("Request", "(testCloseChannel = void)"),
    "set_parameter": encode("Request", '(setParameter = (key = "choices", value = "1,-1,3"))'),
}

for name, data in control_seeds.items():
    (HERE / "corpus" / "control" / name).write_bytes(data)
for name, message in request_seeds.items():
    out = HERE / "corpus" / "request"
    (out / name).write_bytes(struct.pack("<Q", len(message)) + message)
    # The same message with a lying length: past the area, and zero.
    (out / (name + "_long")).write_bytes(struct.pack("<Q", len(message) + 4096) + message)
(HERE / "corpus" / "request" / "zero_length").write_bytes(struct.pack("<Q", 0) + b"\0" * 16)
(HERE / "corpus" / "request" / "huge_length").write_bytes(struct.pack("<Q", 1 << 62) + b"\0" * 16)
print(f"{len(control_seeds)} control seeds, {2 * len(request_seeds) + 2} request seeds")
