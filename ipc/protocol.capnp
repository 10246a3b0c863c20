# The one wire schema of forkgym. Fields are never renumbered; add, don't
# change (a field no longer used is renamed obsolete... and left unset).
# Bump protocolVersion only for changes old peers cannot ignore. Nothing
# here is specific to one compiler: each backend's spaces, actions and facts
# travel as data (passes/backend.h).
#
# Two conversations use it:
#  * control: client <-> zygote, over a Unix stream socket, one length-prefixed
#    message per frame (ipc/control_socket.h). Only zygote->client frames may
#    carry file descriptors.
#  * channel: client <-> worker, in a shared-memory region, one request and one
#    reply at a time, the doorbell saying whose turn it is (ipc/channel.h).
#
# Outcomes travel as UInt16 values of forkgym::Outcome (ipc/outcome.h).

@0x9db1073a56ed6099;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("forkgym::proto");

const protocolVersion :UInt32 = 2;

# The type of an observation (passes/spaces.h, in the same order).
enum ValueType {
  int64 @0;
  int64List @1;
  text @2;
  bytes @3;
  boolean @4;
  float64 @5;
  float64List @6;
  int64Map @7;
}

# How a client presents a value to its user; the ValueType says how it
# travels. Python builds the presentation from the description alone.
enum ValueForm {
  plain @0;          # as its type
  featureDict @1;    # a fixed-length list as a dict keyed by featureNames
  json @2;           # text holding one JSON document, parsed
  file @3;           # bytes written to a new file the caller owns; its path
  records @4;        # text holding a JSON list of lists: one record each,
                     # with featureNames as its fields
  programGraph @5;   # bytes holding one ProgramGraph message (below): a graph
  programGraphNodeLink @6;  # the same bytes, shown as the graph's node-link
                            # document (networkx's node_link_data form)
}

# A program graph (ProGraML: Cummins et al., ICML 2021), the bytes of a value
# of form programGraph / programGraphNodeLink: one unpacked message of this
# struct, as capnp::messageToFlatArray writes it. Columns, not records, so
# that a graph of 100k nodes is a few flat arrays; every text is an index
# into `strings`, which holds each distinct text once. Node i is entry i of
# every node column, edge j entry j of every edge column; a reader checks
# that the columns agree in length and every index is in range.
struct ProgramGraph {
  nodeType @0 :List(UInt8);        # 0 instruction, 1 variable, 2 constant
  nodeText @1 :List(UInt32);       # into strings
  nodeFullText @2 :List(UInt32);   # into strings, or noFullText
  nodeFunction @3 :List(UInt32);   # into functionNames (a number, checked
                                   # by no reader: 0 where none applies)
  nodeBlock @4 :List(UInt32);
  edgeFlow @5 :List(UInt8);        # 0 control, 1 data, 2 call
  edgePosition @6 :List(UInt32);
  edgeSource @7 :List(UInt32);     # node indices
  edgeTarget @8 :List(UInt32);
  strings @9 :List(Text);
  functionNames @10 :List(Text);
  moduleName @11 :Text;
  moduleFeatures @12 :List(KeyValue);  # e.g. llvm_target_triple
}
const noFullText :UInt32 = 0xffffffff;  # a node without a full_text feature

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

struct Failure {
  outcome @0 :UInt16;
  message @1 :Text;
  signal @2 :Int32;      # for crashed: the signal that killed the worker
}

# ---------------------------------------------------------------- control --

# A backend the server serves (zygote's hello), or one a client was built
# knowing (client's hello: name and actionTableHash only).
struct BackendInfo {
  name @0 :Text;             # what NewSession.backend names, e.g. "llvm"
  version @1 :Text;          # the compiler's version
  actionTableHash @2 :UInt64;  # 0: generated at start-up, nothing to compare
  properties @3 :List(KeyValue);  # backend facts (LLVM: hostTriple, hostCpu,
                                  # hostFeatures, optPath), detected before any sandbox
}

struct Hello {
  protocolVersion @0 :UInt32;
  obsoleteLlvmVersion @1 :Text;         # protocol 1; now in backends
  obsoleteActionTableHash @2 :UInt64;
  obsoleteHostTriple @3 :Text;
  obsoleteHostCpu @4 :Text;
  obsoleteHostFeatures @5 :Text;
  obsoleteOptPath @6 :Text;
  # zygote: the backends it serves. Client: the backends it was built
  # knowing, with their action-table hashes; the zygote refuses a client
  # whose hash for one of its backends differs from its own.
  backends @7 :List(BackendInfo);
  # zygote only: how its children are isolated (sandbox/isolation.h).
  sandboxLevel @8 :Text;              # "full", "reduced" or "basic"
  sandboxFeatures @9 :List(Text);     # active, e.g. "seccomp", "pid_namespace"
  sandboxFallbacks @10 :List(Text);   # why each feature that is off is off
}

struct Limits {
  addressSpaceMb @0 :UInt64;     # 0 = server default
  cpuSecondsPerStep @1 :UInt32;  # 0 = server default
}

struct NewSession {
  benchmark @0 :Text;
  limits @1 :Limits;
  backend @2 :Text;      # required: one of the hello's backends
  # How to build and run the benchmark's program (passes/run_config.h):
  # the client's (make_benchmark's, a Benchmark object's); unset, the
  # server attaches its dataset's, if it has one.
  runConfig @3 :RunConfig;
}

struct SessionStarted {
  # Sent with three descriptors: region memfd, doorbell socket, worker pidfd.
  pid @0 :Int32;
  regionBytes @1 :UInt64;
  benchmark @2 :Text;   # canonical URI (benchmark:// URIs stay as named)
  benchmarkHash @3 :Text;  # hex BLAKE3 of the benchmark's content as loaded for this session
}

struct ActionDescription {
  flag @0 :Text;         # the action's name, e.g. "-dce"
  replay @1 :Text;       # what it adds to the replay command line (ReplayCommand)
  description @2 :Text;
  unavailableReason @3 :Text;
  testOnly @4 :Bool;
}

struct SpaceDescription {
  name @0 :Text;
  obsoleteValueType @1 :UInt8;   # protocol 1; now `type`
  obsoleteLength @2 :Int64;      # protocol 1; now `shape`
  deterministic @3 :Bool;
  platformDependent @4 :Bool;
  type @5 :ValueType;            # a reward's is float64
  shape @6 :List(Int64);         # [] scalar or variable length; [n] n values
  low @7 :Float64;               # bounds of each value (a reward's range);
  high @8 :Float64;              # -inf/+inf when unbounded
  featureNames @9 :List(Text);   # one per element of a fixed-length list
  description @10 :Text;
  # Built by running the benchmark's program: invalid_request on a
  # benchmark without a run configuration.
  needsRunConfig @11 :Bool;
  form @12 :ValueForm;
  float32 @13 :Bool;             # the client narrows float64 values to float32
  fileSuffix @14 :Text;          # form file: the file's name ends with it
}

# The replay command line of an episode, from its actions alone:
#   quote(program) [actionsPrefix a1 separator a2 ... actionsSuffix] tail
# a_i being each action's `replay` text, the bracket only when there is one.
struct ReplayCommand {
  program @0 :Text;
  actionsPrefix @1 :Text;
  separator @2 :Text;
  actionsSuffix @3 :Text;
  tail @4 :Text;
  # The state's own command line replays the episode, not its actions' (a
  # gcc-v0 step "+1" has no argument of its own; a choices parameter sets
  # the state with no action): workers send it in Reply.stateCommandLine.
  fromState @5 :Bool;
  # Every argument such a line may hold between quote(program) and tail,
  # one separator apart: a text ending in '=' admits a decimal integer after
  # it, any other text only itself. The client refuses a line with others
  # (a worker is not trusted to write what a user will run).
  stateArguments @6 :List(Text);
}

# One backend, as describeBackend answers.
struct Description {
  actions @0 :List(ActionDescription);
  observations @1 :List(SpaceDescription);
  rewards @2 :List(SpaceDescription);
  cachedBenchmarks @3 :List(Text);   # this backend's
  obsoleteInstCountNames @4 :List(Text);  # protocol 1; now featureNames
  obsoleteAutophaseNames @5 :List(Text);
  backend @6 :Text;
  version @7 :Text;
  actionSpace @8 :Text;              # the action space's name
  replay @9 :ReplayCommand;
  description @10 :Text;             # the backend's, one line
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
  stateCache @4 :StateCacheStats;      # unset when the server runs without one
}

# The node-wide state cache (ipc/state_cache.h): shared by every zygote of
# this user, so the counts are the segment's, not this server's alone.
struct StateCacheStats {
  name @0 :Text;            # the POSIX shared-memory name
  capacityBytes @1 :UInt64;
  usedBytes @2 :UInt64;
  entries @3 :UInt64;
  inserts @4 :UInt64;
  evictions @5 :UInt64;
  dropped @6 :UInt64;
  hits @7 :UInt64;
  misses @8 :UInt64;
  rejected @9 :UInt64;      # submissions this server's workers sent that it refused
}

struct LoadingBenchmark {
  benchmark @0 :Text;   # canonical URI
  waiters @1 :UInt32;   # session requests answered when it is loaded
}

struct ControlRequest {
  union {
    hello @0 :Hello;
    newSession @1 :NewSession;
    obsoleteDescribe @2 :Void;  # protocol 1; answered with a failure
    workerExit @3 :Int32;  # pid: how did this worker end?
    status @4 :Void;
    describeBackend @5 :Text;   # a backend's name -> description
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

struct NamedCount {
  name @0 :Text;
  count @1 :Int64;
}

struct ObservationValue {
  union {
    int64 @0 :Int64;
    int64List @1 :List(Int64);
    text @2 :Text;
    bytes @3 :Data;
    boolean @4 :Bool;
    float64 @5 :Float64;
    float64List @6 :List(Float64);
    int64Map @7 :List(NamedCount);
  }
}

struct StepResult {
  observations @0 :List(ObservationValue);
  rewards @1 :List(Float64);
  actionHadNoEffect @2 :Bool;
  # Actions the worker has followed from the state cache and not yet applied
  # to its module: the next request that needs the module applies them
  # first, so the client allows it one step's time more for each (never
  # more than the episode's length: a worker cannot buy itself time).
  actionsDeferred @3 :UInt32;
}

struct ForkResult {
  # Sent with three descriptors (region memfd, doorbell, pidfd) by the
  # parent worker: the zygote is not on the data path once a session runs.
  # pid is the copy's pid as the worker sees it, in the workers' PID
  # namespace when there is one: a client names the process by its pidfd.
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
    # A backend setting (CompilerGym's send_param, e.g. gcc's choices),
    # answered by the session: Reply.parameter, or invalid_request naming
    # the keys the backend accepts.
    setParameter @4 :Parameter;
    # Build the episode's program and run it (Reply.run): needs a run
    # configuration; invalid_request otherwise.
    run @5 :RunRequest;
    # What stepping each action from this state would return for one reward
    # space, for the actions the node-wide state cache holds (Reply.peek);
    # changes nothing, runs no pass. A worker without the cache knows none.
    peek @6 :Peek;
  }
}

struct Peek {
  actions @0 :List(UInt32);
  reward @1 :Text;
}

struct PeekResult {
  # One per action asked, in order: known[i] says whether rewards[i] (and
  # actionHadNoEffect[i]) is what stepping actions[i] alone would give.
  known @0 :List(Bool);
  rewards @1 :List(Float64);
  actionHadNoEffect @2 :List(Bool);
}

struct Parameter {
  key @0 :Text;
  value @1 :Text;
}

struct Reply {
  union {
    step @0 :StepResult;
    fork @1 :ForkResult;
    failure @2 :Failure;
    parameter @3 :Text;
    run @5 :RunResult;
    peek @6 :PeekResult;
  }
  # When the backend's ReplayCommand.fromState: the session's command line
  # for its state after this request (steps and parameters, also when they
  # fail), which the client keeps for its reproducer.
  stateCommandLine @4 :Text;
}

# ------------------------------------------------------------ running --
# A benchmark's run configuration (passes/run_config.h has the semantics,
# defaults and limits): CompilerGym's BenchmarkDynamicConfig. Contents, not
# paths: nothing on the client's disk matters once a session starts.

struct RunFile {
  name @0 :Text;     # a plain file name in the run directory (no '/')
  content @1 :Data;
}

# One set of inputs (CompilerGym's ?dataset=N, a cBench validator's i).
struct RunInputSet {
  name @0 :Text;
  arguments @1 :List(Text);   # appended to the run command
  stdin @2 :Data;
  files @3 :List(RunFile);    # written into the run directory first
}

# A command run in the run directory before or after the program. It may
# execute only what the program may: the freshly built binary (no shell).
struct RunCommand {
  argv @0 :List(Text);
  timeoutSeconds @1 :UInt32;  # 0: 30
}

struct RunConfig {
  buildCommand @0 :List(Text);     # empty: ["$CC", "$IN"]
  buildOutfile @1 :Text;           # empty: "a.out"
  buildTimeoutSeconds @2 :UInt32;  # 0: 60
  runCommand @3 :List(Text);       # empty: ["./a.out"]
  runTimeoutSeconds @4 :UInt32;    # 0: 300
  inputSets @5 :List(RunInputSet); # empty: one set with nothing in it
  outputFiles @6 :List(Text);      # read back after each run, to compare
  preRunCommands @7 :List(RunCommand);
  postRunCommands @8 :List(RunCommand);
  origin @9 :Text;                 # "client", or "dataset <name>"
}

enum RunProgram {
  current @0;    # the episode's state
  original @1;   # the benchmark as loaded: the gold standard
  asan @2;       # the state, instrumented by AddressSanitizer
}

struct RunRequest {
  program @0 :RunProgram;
  inputSets @1 :List(UInt32);  # indices; empty: every set
  repetitions @2 :UInt32;      # per input set; 0: 1
  warmups @3 :UInt32;          # unmeasured runs before them
  # The programs' wall-clock limit: 0, the configuration's run timeout;
  # else this, at most that (validate() derives it from the gold run).
  runTimeoutSeconds @4 :UInt32;
}

# One run of the program. outcome: a forkgym::Outcome value (ok when it
# exited, whatever its status; crashed, timed_out, out_of_memory,
# sandbox_violation, output_too_large).
struct ProgramRun {
  inputSet @0 :UInt32;
  outcome @1 :UInt16;
  exitCode @2 :Int32;          # when it exited
  signal @3 :Int32;            # when a signal ended it
  wallSeconds @4 :Float64;
  instructions @5 :UInt64;     # retired, user space; when hasInstructions
  hasInstructions @6 :Bool;
  stdout @7 :Data;
  stdoutTruncated @8 :Bool;
  stderr @9 :Data;
  stderrTruncated @10 :Bool;
  outputFiles @11 :List(RunFile);  # the config's outputFiles that exist
  message @12 :Text;           # how it ended, in words
  timeoutSeconds @13 :UInt32;  # the wall-clock limit it ran under
}

struct RunResult {
  built @0 :Bool;
  buildOutcome @1 :UInt16;     # ok, or build_failed / timed_out / ...
  buildSeconds @2 :Float64;
  buildDiagnostics @3 :Text;   # the linker's stderr (capped)
  textSizeBytes @4 :Int64;     # .text of the linked binary; -1 unknown
  runs @5 :List(ProgramRun);   # measured runs only, by input set then repetition
  instructionsUnavailable @6 :Text;  # why no instruction counts, or empty
}
