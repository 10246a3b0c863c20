#include "base/shell_quote.h"

#include <gtest/gtest.h>

namespace forkgym {
namespace {

TEST(ShellQuoted, APlainWordStaysAsItIs) {
  EXPECT_EQ(shellQuoted("/usr/lib/llvm-19/bin/opt"), "/usr/lib/llvm-19/bin/opt");
  EXPECT_EQ(shellQuoted("--param=max-unroll-times=3,x@y:z+"), "--param=max-unroll-times=3,x@y:z+");
}

TEST(ShellQuoted, AnythingElseIsSingleQuotedAndReadsBackAsItWas) {
  EXPECT_EQ(shellQuoted(""), "''");
  EXPECT_EQ(shellQuoted("/opt/my gcc/bin/gcc"), "'/opt/my gcc/bin/gcc'");
  EXPECT_EQ(shellQuoted("$HOME;rm"), "'$HOME;rm'");
  EXPECT_EQ(shellQuoted("it's"), "'it'\\''s'");
}

}  // namespace
}  // namespace forkgym
