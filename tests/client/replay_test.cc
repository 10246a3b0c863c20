// Replay command lines a client writes into reproducers. A backend whose
// state is not a function of its actions' texts (gcc-v0: "+1" steps, the
// choices parameter; ReplayCommand.fromState) has its workers send the
// state's own line; the client names it only if it is made of the
// backend's arguments, since a worker is not trusted to write what a user
// will run. (The line a real gcc-v0 worker sends is checked against a hand
// compile in tests/passes/gcc.)
#include <gtest/gtest.h>

#include "client/connection.h"

namespace forkgym::testing {
namespace {

Description gccLike() {
  Description d;
  d.replay = {"/usr/bin/gcc", " ", " ", "", " -w -c src.c -o obj.o", true,
              {"-O0", "-O2", "-ftree-vectorize", "-fno-tree-vectorize", "--param=max-unroll-times="}};
  return d;
}

TEST(StateCommandLine, TheResetStateAndChosenArgumentsAreNamed) {
  const Description d = gccLike();
  EXPECT_TRUE(d.checkStateCommandLine("/usr/bin/gcc -w -c src.c -o obj.o").ok());
  EXPECT_TRUE(d.checkStateCommandLine("/usr/bin/gcc -O2 -fno-tree-vectorize -w -c src.c -o obj.o").ok());
  EXPECT_TRUE(d.checkStateCommandLine("/usr/bin/gcc --param=max-unroll-times=17 -w -c src.c -o obj.o").ok());
  EXPECT_TRUE(d.checkStateCommandLine("/usr/bin/gcc -O0 --param=max-unroll-times=-1 -w -c src.c -o obj.o").ok());
}

TEST(StateCommandLine, ALineWithAnythingElseIsRefusedSayingWhat) {
  const Description d = gccLike();
  const auto refused = [&](std::string_view line, std::string_view why) {
    auto checked = d.checkStateCommandLine(line);
    ASSERT_FALSE(checked.ok()) << line;
    EXPECT_EQ(checked.error().outcome, Outcome::InvalidRequest);
    EXPECT_NE(checked.error().message.find(why), std::string::npos) << checked.error().message;
  };
  // An argument the backend never writes, even a plausible gcc one.
  refused("/usr/bin/gcc -O2 -o.bashrc -w -c src.c -o obj.o", "'-o.bashrc' is not an argument of this backend");
  refused("/usr/bin/gcc -B. -w -c src.c -o obj.o", "'-B.' is not an argument");
  // Shell syntax.
  refused("/usr/bin/gcc -O2; rm -rf ~ -w -c src.c -o obj.o", "'-O2;' is not an argument");
  // An integer form with no integer, or more after it.
  refused("/usr/bin/gcc --param=max-unroll-times= -w -c src.c -o obj.o", "is not an argument");
  refused("/usr/bin/gcc --param=max-unroll-times=3x -w -c src.c -o obj.o", "is not an argument");
  // Another program, another tail, or empty arguments.
  refused("/bin/sh -c x -w -c src.c -o obj.o", "does not start with /usr/bin/gcc");
  refused("/usr/bin/gcc -O2 -w -c src.c -o /etc/passwd", "does not start with /usr/bin/gcc and end with");
  refused("/usr/bin/gcc  -O2 -w -c src.c -o obj.o", "'' is not an argument");
  refused("", "does not start with");
}

TEST(StateCommandLine, ABackendThatReplaysFromItsActionsTakesNoLineFromAWorker) {
  Description d = gccLike();
  d.replay.fromState = false;
  EXPECT_FALSE(d.checkStateCommandLine("/usr/bin/gcc -w -c src.c -o obj.o").ok());
}

}  // namespace
}  // namespace forkgym::testing
