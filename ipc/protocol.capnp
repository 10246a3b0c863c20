# The one wire schema of forkgym. Fields are never renumbered; add, don't
# change. Bump kProtocolVersion only for changes old peers cannot ignore.
#
# Two conversations use it:
#  * control: client <-> zygote, over a Unix stream socket, one length-prefixed
#    message per frame (ipc/control_socket.h). Only zygote->client frames may
#    carry file descriptors.
#  * channel: client <-> worker, in a shared-memory region, one request and one
#    reply at a time, the doorbell saying whose turn it is (ipc/channel.h).
#
# Outcomes travel as UInt16 values of forkgym::Outcome (base/outcome.h).

@0x9db1073a56ed6099;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("forkgym::proto");

const protocolVersion :UInt32 = 1;

struct Failure {
  outcome @0 :UInt16;
  message @1 :Text;
  signal @2 :Int32;      # for crashed: the signal that killed the worker
}

# ---------------------------------------------------------------- control --

struct Hello {
  protocolVersion @0 :UInt32;
  llvmVersion @1 :Text;
  actionTableHash @2 :UInt64;
  hostTriple @3 :Text;   # zygote only: detected before any sandbox
  hostCpu @4 :Text;
  hostFeatures @5 :Text;
  optPath @6 :Text;      # zygote only: the opt of the LLVM the server was built
                         # against, for reproducer command lines
}

struct Limits {
  addressSpaceMb @0 :UInt64;     # 0 = server default
  cpuSecondsPerStep @1 :UInt32;  # 0 = server default
}

struct NewSession {
  benchmark @0 :Text;
  limits @1 :Limits;
}

struct SessionStarted {
  # Sent with three descriptors: region memfd, doorbell socket, worker pidfd.
  pid @0 :Int32;
  regionBytes @1 :UInt64;
  benchmark @2 :Text;   # canonical URI
  benchmarkHash @3 :Text;  # hex BLAKE3 of the benchmark's content as loaded for this session
}

struct ActionDescription {
  flag @0 :Text;
  pipeline @1 :Text;
  description @2 :Text;
  unavailableReason @3 :Text;
  testOnly @4 :Bool;
}

struct SpaceDescription {
  name @0 :Text;
  valueType @1 :UInt8;   # passes::ValueType
  length @2 :Int64;
  deterministic @3 :Bool;
  platformDependent @4 :Bool;
}

struct Description {
  actions @0 :List(ActionDescription);
  observations @1 :List(SpaceDescription);
  rewards @2 :List(SpaceDescription);
  cachedBenchmarks @3 :List(Text);
  instCountNames @4 :List(Text);
  autophaseNames @5 :List(Text);
}

struct WorkerExit {
  known @0 :Bool;        # false: not a worker of this zygote, or not ended yet
  exitCode @1 :Int32;    # -1 when killed by a signal
  signal @2 :Int32;
  explanation @3 :Text;  # e.g. the sandbox stage a setup exit code names
}

# What the zygote is doing now: product-safe counters a client (or a test,
# instead of sleeping while the zygote catches up) can read.
struct ServerStatus {
  spareBenchmarks @0 :List(Text);  # benchmarks with a spare worker forked and waiting
  sparesWanted @1 :UInt32;         # wanted benchmarks still without one (forked when idle)
  pendingLoads @2 :UInt32;         # benchmark loads not finished yet
  loading @3 :List(LoadingBenchmark);  # those loads, and who waits for each
}

struct LoadingBenchmark {
  benchmark @0 :Text;   # canonical URI
  waiters @1 :UInt32;   # session requests answered when it is loaded
}

struct ControlRequest {
  union {
    hello @0 :Hello;
    newSession @1 :NewSession;
    describe @2 :Void;
    workerExit @3 :Int32;  # pid: how did this worker end?
    status @4 :Void;
  }
}

struct ControlReply {
  union {
    hello @0 :Hello;
    session @1 :SessionStarted;
    description @2 :Description;
    workerExit @3 :WorkerExit;
    failure @4 :Failure;
    status @5 :ServerStatus;
  }
}

# ---------------------------------------------------------------- channel --

struct Step {
  actions @0 :List(UInt32);
  observations @1 :List(Text);
  rewards @2 :List(Text);
}

struct ObservationValue {
  union {
    int64 @0 :Int64;
    int64List @1 :List(Int64);
    text @2 :Text;
    bytes @3 :Data;
    boolean @4 :Bool;
  }
}

struct StepResult {
  observations @0 :List(ObservationValue);
  rewards @1 :List(Float64);
  actionHadNoEffect @2 :Bool;
}

struct ForkResult {
  # Sent with three descriptors (region memfd, doorbell, pidfd) by the
  # parent worker: the zygote is not on the data path once a session runs.
  pid @0 :Int32;
  regionBytes @1 :UInt64;
}

struct Request {
  union {
    step @0 :Step;
    fork @1 :Void;
    # Fault injection, honoured only by FORKGYM_TEST_ACTIONS builds (others
    # answer invalid_request): the reliability suite uses them to run each
    # denied syscall in a real worker, and to make a worker drop its channel.
    testSyscall @2 :Int64;   # call this syscall number with zero arguments
    testCloseChannel @3 :Void;  # close the channel, then linger without it
  }
}

struct Reply {
  union {
    step @0 :StepResult;
    fork @1 :ForkResult;
    failure @2 :Failure;
  }
}
