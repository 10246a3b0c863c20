#include "base/trimmed.h"

#include <gtest/gtest.h>

namespace forkgym {
namespace {

TEST(Trimmed, WhiteSpaceAroundTheTextGoesAndWithinItStays) {
  EXPECT_EQ(trimmed(" \t file:///a b.c\r\n"), "file:///a b.c");
  EXPECT_EQ(trimmed("-O2"), "-O2");
  EXPECT_EQ(trimmed(" \n\t\r "), "");
  EXPECT_EQ(trimmed(""), "");
}

}  // namespace
}  // namespace forkgym
